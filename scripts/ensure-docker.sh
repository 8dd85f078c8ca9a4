#!/bin/sh
# ensure-docker.sh — make sure a Docker engine is installed, running and usable by labctl.
#
# Idempotent: safe to run twice and when dockerd is already up. Used by scripts/setup.sh and CI.
#   1. install the distribution's docker.io with apt when dockerd is missing;
#   2. start the engine: systemctl when systemd runs, otherwise dockerd in the background
#      (log: /var/log/labctl-dockerd.log), then wait (bounded) for the socket to answer;
#   3. make the root mount shared, because nodes bind-mount /var/run/docker/netns with
#      rslave propagation, which Docker refuses on a private root mount.
# Environment: LABCTL_DOCKERD_LOG (log file), LABCTL_DOCKERD_TIMEOUT (seconds, default 60).
set -eu

LOG="${LABCTL_DOCKERD_LOG:-/var/log/labctl-dockerd.log}"
TIMEOUT="${LABCTL_DOCKERD_TIMEOUT:-60}"

say() { printf ' • %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" = 0 ] || die "$1 needs root: run '$0' as root"
}

install_engine() {
    if command -v dockerd >/dev/null 2>&1; then
        return 0
    fi
    need_root "installing docker.io"
    say "installing the Docker engine (apt-get install docker.io)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || die "failed to run 'apt-get update': check the network and /etc/apt/sources.list"
    apt-get install -y -qq docker.io >/dev/null || die "failed to install 'docker.io' with apt-get: run 'apt-get install docker.io' to see why"
}

engine_up() { docker info >/dev/null 2>&1; }

has_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

# A dockerd we started earlier may still be starting up: don't start a second one.
dockerd_running() {
    pgrep -x dockerd >/dev/null 2>&1
}

wait_for_engine() {
    i=0
    while [ "$i" -lt "$TIMEOUT" ]; do
        engine_up && return 0
        sleep 1
        i=$((i + 1))
    done
    printf 'ERROR: the Docker engine did not answer on /var/run/docker.sock within %ss; last lines of %s:\n' "$TIMEOUT" "$LOG" >&2
    tail -n 15 "$LOG" >&2 2>/dev/null || true
    exit 1
}

start_engine() {
    if engine_up; then
        say "Docker engine is running ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
        return 0
    fi
    need_root "starting dockerd"
    if has_systemd && systemctl start docker >/dev/null 2>&1; then
        say "started the Docker engine with systemctl"
    elif dockerd_running; then
        say "dockerd is already starting; waiting for it"
    else
        say "starting dockerd in the background (no systemd); log: $LOG"
        mkdir -p "$(dirname "$LOG")"
        # setsid + nohup: the engine must outlive this script and the shell that ran it.
        setsid nohup dockerd >>"$LOG" 2>&1 </dev/null &
    fi
    wait_for_engine
    say "Docker engine is running ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
}

ensure_shared_root() {
    prop="$(findmnt -no PROPAGATION / 2>/dev/null || echo unknown)"
    case "$prop" in
        shared*) return 0 ;;
    esac
    need_root "making the root mount shared"
    say "making / a shared mount (was '$prop'): nodes bind-mount /var/run/docker/netns with rslave propagation"
    mount --make-rshared / || die "failed to run 'mount --make-rshared /': without it nodes cannot see pod network namespaces"
}

install_engine
start_engine
ensure_shared_root
