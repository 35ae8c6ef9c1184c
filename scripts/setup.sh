#!/usr/bin/env bash
# Create .venv and install exactly the locked dependency set (uv.lock) with the dev tools.
# Fast when nothing changed: uv only checks the environment against the lock.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
source scripts/uv.sh
"$UV" sync --locked --extra dev --quiet
# The inspector page's browser libraries (livekit-client, supabase-js), pinned by package-lock.json;
# served from api/inspector/node_modules, nothing is built.
if [ api/inspector/node_modules/.package-lock.json -nt api/inspector/package-lock.json ]; then
  :  # already installed from this lock
elif command -v npm >/dev/null 2>&1; then
  (cd api/inspector && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "warning: npm not found: the inspector page will work without voice calls and Supabase sign-in" >&2
fi
