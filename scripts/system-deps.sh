#!/usr/bin/env bash
# System libraries the test suite and `python -m agent console` need: PortAudio (libportaudio2).
# Installs it with apt-get when it is missing and this user can (root, or passwordless sudo);
# otherwise prints how to install it and carries on (the console test is then skipped).
set -euo pipefail
if ldconfig -p 2>/dev/null | grep -q 'libportaudio\.so\.2'; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: PortAudio is missing; install it with your package manager (e.g. brew install portaudio)" >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "note: PortAudio is missing; run: sudo apt-get install libportaudio2" >&2
  exit 0
fi
echo "installing libportaudio2 (PortAudio, needed by python -m agent console)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libportaudio2 >/dev/null
