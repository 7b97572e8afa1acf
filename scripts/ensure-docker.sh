#!/usr/bin/env bash
# Make sure a Docker engine answers. On a fresh Debian machine (as root) this installs
# Debian's docker.io and starts dockerd in the background; elsewhere it only checks.
set -euo pipefail

log() { printf 'ensure-docker: %s\n' "$*" >&2; }

engine_up() { docker info >/dev/null 2>&1; }

# The system engine is the one on the default socket; dockerd processes of other engines
# (scripts/engines.sh) have their own pidfiles and do not count.
system_pid() {
  local pid; pid=$(cat /var/run/docker.pid 2>/dev/null) || return 1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

if engine_up; then
  # A running system engine whose default bridge is gone (something deleted docker0) starts
  # no container on the default network: restart it once, if this script started it.
  if [[ -z ${DOCKER_HOST:-} && $(id -u) == 0 && -f ${IMMU_DOCKERD_LOG:-/var/log/immu-dockerd.log} ]] \
      && ! ip link show docker0 >/dev/null 2>&1 && pid=$(system_pid); then
    log "the system engine's docker0 bridge is gone; restarting dockerd $pid"
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  else
    exit 0
  fi
fi

if [ -n "${DOCKER_HOST:-}" ]; then
  log "DOCKER_HOST=$DOCKER_HOST does not answer; start that engine or unset DOCKER_HOST"
  exit 1
fi

if [ "$(id -u)" != 0 ]; then
  log "no Docker engine answers and this is not root: start one (sudo systemctl start docker)"
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing Debian's docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi
if ! command -v docker >/dev/null 2>&1; then
  log "docker CLI missing after install"; exit 1
fi

logfile=${IMMU_DOCKERD_LOG:-/var/log/immu-dockerd.log}
if ! system_pid >/dev/null; then
  log "starting dockerd (log: $logfile)"
  # setsid: the daemon must outlive this script and the test run's process group.
  setsid nohup dockerd >"$logfile" 2>&1 < /dev/null &
fi
for _ in $(seq 1 120); do
  if engine_up; then
    log "engine ready: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
    exit 0
  fi
  sleep 0.5
done
log "dockerd did not answer within 60s; last lines of $logfile:"
tail -n 20 "$logfile" >&2 || true
exit 1
