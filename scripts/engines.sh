#!/usr/bin/env bash
# Docker engines beside the system one, for testing on the engines users have:
#   scripts/engines.sh start docker26             Docker 26 + buildx, classic image store
#   scripts/engines.sh start docker26-containerd  the same with the containerd snapshotter
#                                                 (the default of fresh Docker 29 installs)
#   scripts/engines.sh stop NAME | env NAME | list
# `start` and `env` print shell lines to eval: DOCKER_HOST (the engine's own socket) and
# IMMU_BUILDX (its buildx plugin). Docker 26, buildx and containerd come from Debian 13's
# packages (they need only libc6 >= 2.34): downloaded once with a temporary apt
# configuration (the system's sources and packages stay as they are) and unpacked with
# dpkg -x into the project's cache. Each dockerd has its own data-root, exec-root, socket,
# pidfile, containerd and address pool, and leaves iptables to the system engine.
set -euo pipefail

cache=${IMMU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/immu-action}
state_base=${IMMU_ENGINES_STATE:-/var/lib/immu-engines}
run_base=${IMMU_ENGINES_RUN:-/run/immu-engines}
suite=${IMMU_ENGINES_SUITE:-trixie}
mirror=${IMMU_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Not runc nor tini: Debian 13 builds them against glibc 2.38; the system's runc (Debian 12's,
# installed with its docker.io by ensure-docker.sh) runs the containers of both engines.
packages=(docker.io docker-cli docker-buildx containerd)

log() { printf 'engines: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

usage() { sed -n '2,7s/^# \{0,1\}//p' "$0" >&2; exit 2; }

# The unpacked packages; their versions name the directory, so an update unpacks anew.
fetch() {
  local apt="$cache/apt-$suite"
  mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/etc"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" \
    > "$apt/etc/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt" -o "Dir::Cache::archives=$apt/archives"
              -o Dir::State::Status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  [[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] || die "needs debian-archive-keyring"
  if [[ -z $(find "$apt/lists" -name '*Packages*' -mmin -1440 2>/dev/null | head -n1) ]]; then
    log "reading Debian $suite's package lists (once a day)"
    apt-get "${opts[@]}" update -qq >&2 || die "apt-get update for $suite failed"
  fi
  local versions="" p v
  for p in "${packages[@]}"; do
    v=$(apt-cache "${opts[@]}" show --no-all-versions "$p" 2>/dev/null | sed -n 's/^Version: //p' | head -n1)
    [[ -n $v ]] || die "$p is not in Debian $suite"
    versions+="$p=$v "
  done
  local key; key=$(printf '%s' "$versions" | sha256sum | cut -c1-16)
  root="$cache/engines/$suite-$key"
  if [[ -x $root/usr/sbin/dockerd && -f $root/.complete ]]; then return 0; fi
  log "downloading from Debian $suite: $versions"
  rm -rf "$root" && mkdir -p "$root"
  (cd "$apt/archives" && apt-get "${opts[@]}" download -qq "${packages[@]}" >&2) \
    || die "apt-get download failed"
  for p in "${packages[@]}"; do
    dpkg -x "$(ls -t "$apt/archives/${p}_"*.deb | head -n1)" "$root"
  done
  echo "$versions" > "$root/.complete"
}

config() {  # the daemon.json of engine $1
  case "$1" in
    docker26) echo '{"features": {"containerd-snapshotter": false}}' ;;
    docker26-containerd) echo '{"features": {"containerd-snapshotter": true}}' ;;
    *) die "unknown engine '$1' (docker26 or docker26-containerd)" ;;
  esac
}

pool() {  # a private address pool per engine, away from the system engine's 172.17+
  case "$1" in docker26) echo 10.201 ;; docker26-containerd) echo 10.202 ;; esac
}

bridge() {  # the engine's default bridge: its own, never docker0 (a dockerd started with
  # --bridge none removes the system engine's docker0)
  case "$1" in docker26) echo immu-d26 ;; docker26-containerd) echo immu-d26c ;; esac
}

network_setup() {  # $1 engine: its bridge, and traffic within its pool let through
  local name=$1 br; br=$(bridge "$1")
  if ! ip link show "$br" >/dev/null 2>&1; then
    ip link add "$br" type bridge
    ip addr add "$(pool "$name").255.1/24" dev "$br"
  fi
  ip link set "$br" up
  # The system engine's FORWARD policy is DROP and bridged packets meet it (br_netfilter):
  # containers of this engine talk to each other only with this rule (it adds none itself).
  local rule=(FORWARD -s "$(pool "$name").0.0/16" -d "$(pool "$name").0.0/16" -j ACCEPT)
  if command -v iptables >/dev/null; then
    iptables -C "${rule[@]}" 2>/dev/null || iptables -I "${rule[@]}"
  fi
}

env_lines() {  # $1 engine
  local sock="$run_base/$1/docker.sock"
  echo "export DOCKER_HOST=unix://$sock"
  echo "export IMMU_BUILDX=$root/usr/libexec/docker/cli-plugins/docker-buildx"
}

answers() { DOCKER_HOST="unix://$run_base/$1/docker.sock" "$root/usr/bin/docker" info >/dev/null 2>&1; }

start() {
  local name=$1
  config "$name" >/dev/null
  [[ $(id -u) == 0 ]] || die "starting an engine needs root"
  command -v runc >/dev/null || die "no runc: run scripts/ensure-docker.sh first (Debian's docker.io)"
  fetch
  if answers "$name"; then env_lines "$name"; return 0; fi
  local state="$state_base/$name" run="$run_base/$name"
  mkdir -p "$state/data" "$run/exec"
  config "$name" > "$state/daemon.json"
  network_setup "$name"
  # A dockerd that finds a "bridge" network in its store deletes it and, when it has an
  # address pool (ours do), the interface named docker0 too: the SYSTEM engine's bridge,
  # whatever --bridge says (moby's configureNetworking, "Clear stale bridge network").
  # A fresh network store has no such network; the engine's networks are the tests'
  # throwaway ones, nothing to keep.
  rm -f "$state/data/network/files/local-kv.db"
  local had_docker0=""; ip link show docker0 >/dev/null 2>&1 && had_docker0=1
  log "starting $name (Docker $("$root/usr/sbin/dockerd" --version | sed 's/^Docker version //'))"
  # setsid: the daemon outlives this script and the test run's process group. PATH puts
  # Debian 13's containerd, runc and docker-proxy before the system's.
  PATH="$root/usr/sbin:$root/usr/bin:$root/usr/libexec/docker:$PATH" setsid nohup \
    "$root/usr/sbin/dockerd" --config-file "$state/daemon.json" \
      --data-root "$state/data" --exec-root "$run/exec" --pidfile "$run/dockerd.pid" \
      --host "unix://$run/docker.sock" --bridge "$(bridge "$name")" --iptables=false \
      --ip6tables=false --ip-masq=false \
      --default-address-pool "base=$(pool "$name").0.0/16,size=24" \
      > "$state/dockerd.log" 2>&1 < /dev/null &
  for _ in $(seq 1 120); do
    if answers "$name"; then
      if [[ -n $had_docker0 ]] && ! ip link show docker0 >/dev/null 2>&1; then
        die "starting $name removed the system engine's docker0 bridge: restart the system dockerd"
      fi
      env_lines "$name"; return 0
    fi
    sleep 0.5
  done
  tail -n 30 "$state/dockerd.log" >&2 || true
  die "$name did not answer within 60 s (log: $state/dockerd.log)"
}

stop() {
  local pidfile="$run_base/$1/dockerd.pid"
  [[ -f $pidfile ]] || return 0
  kill "$(cat "$pidfile")" 2>/dev/null || true
  for _ in $(seq 1 60); do [[ -f $pidfile ]] || return 0; sleep 0.5; done
}

case "${1:-}" in
  start) [[ $# == 2 ]] || usage; start "$2" ;;
  env) [[ $# == 2 ]] || usage; fetch; env_lines "$2" ;;
  stop) [[ $# == 2 ]] || usage; stop "$2" ;;
  list) echo docker26 docker26-containerd ;;
  *) usage ;;
esac
