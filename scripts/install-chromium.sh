#!/usr/bin/env bash
# Make sure Debian's chromium is installed (the inspector's browser tests drive it through Playwright).
# Never downloads a Playwright browser: `playwright install` is not used anywhere.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium (for the inspector browser tests)..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  exit 0
fi
echo "warning: chromium is missing and cannot be installed here (needs root and apt-get);" \
  "install it (e.g. 'sudo apt-get install chromium') to run tests/http/test_inspector_browser.py" >&2
