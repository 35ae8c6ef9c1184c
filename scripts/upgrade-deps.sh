#!/usr/bin/env bash
# A deliberate upgrade: re-resolve uv.lock to the newest versions pyproject.toml allows, install them,
# run the whole suite, and leave the new lock uncommitted for review (git diff uv.lock).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/uv.sh
"$UV" lock --upgrade
"$UV" sync --locked --extra dev --quiet
if bash scripts/test.sh "$@"; then
  echo "upgrade-deps: the suite passes with the new lock; review 'git diff uv.lock' and commit it."
else
  echo "upgrade-deps: the suite FAILS with the new lock; fix or 'git checkout uv.lock && bash scripts/setup.sh'." >&2
  exit 1
fi
