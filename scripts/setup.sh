#!/usr/bin/env bash
# Create .venv and install exactly the locked dependency set (uv.lock) with the dev tools.
# Fast when nothing changed: uv only checks the environment against the lock.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/uv.sh
"$UV" sync --locked --extra dev --quiet
