#!/usr/bin/env bash
# Set up, lint, type-check and run the whole test suite (real Redis/Postgres servers are started by the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
