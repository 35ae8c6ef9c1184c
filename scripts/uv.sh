# Sourced by the scripts: makes $UV point at the pinned uv (installed once into .tools/ from PyPI).
# uv never downloads a Python of its own here: it uses $PYTHON (default python3, 3.11+).
UV_VERSION="0.13.9"
PYTHON="${PYTHON:-python3}"
export UV_PYTHON_DOWNLOADS=never
# trust the machine's CA store too (registries reached through a TLS-inspecting proxy)
export UV_SYSTEM_CERTS="${UV_SYSTEM_CERTS:-true}"
export UV_PYTHON="${UV_PYTHON:-$PYTHON}"
UV=".tools/bin/uv"
if [ ! -x "$UV" ] || [ "$("$UV" --version 2>/dev/null | cut -d' ' -f1-2)" != "uv $UV_VERSION" ]; then
  "$PYTHON" -m venv .tools
  .tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
