#!/usr/bin/env bash
# Set up and run the voice agent worker (default mode: dev) on the embedded SQLite store.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m agent "${@:-dev}"
