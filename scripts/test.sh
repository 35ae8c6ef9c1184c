#!/usr/bin/env bash
# Set up, lint, type-check and run the whole test suite (real Redis/Postgres servers are started by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install-chromium.sh  # the inspector browser tests drive Debian's chromium (not needed to run the agent)
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
