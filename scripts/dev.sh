#!/usr/bin/env bash
# The project's two entry points (the README's quick start):
#   scripts/dev.sh example   immu run on examples/python-service (build + test in containers)
#   scripts/dev.sh test      the whole test suite (unit, integration, e2e)
# Both set themselves up: a venv with the package, a Docker engine (installing Debian's
# docker.io and starting dockerd when none answers), the offline base images (cached by
# content) and the dev tools. Nothing has to be installed by hand first.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${IMMU_VENV:-$root/.venv}"

log() { printf 'dev: %s\n' "$*" >&2; }

apt_install() {
  [ "$(id -u)" = 0 ] || { log "need root to apt-get install $*"; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}

python_env() {
  if ! python3 -c 'import sys; assert sys.version_info >= (3, 10)' 2>/dev/null; then
    log "python3 >= 3.10 is required"; exit 1
  fi
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
  fi
  # Re-install only when the project's metadata changed (fast second run).
  stamp="$venv/.immu-installed"
  want=$(sha256sum pyproject.toml | cut -c1-64)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing immu-action and its test dependencies into $venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]"
    echo "$want" > "$stamp"
  fi
}

engine_and_images() {
  scripts/ensure-docker.sh
  scripts/base-images.sh "$@" >/dev/null
}

case "${1:-}" in
  example)
    python_env
    engine_and_images busybox python postgres
    shift
    exec "$venv/bin/immu" run -f examples/python-service/immu.offline.yml "$@"
    ;;
  test)
    python_env
    scripts/install-tools.sh "$venv"
    engine_and_images
    shift
    export PATH="$venv/bin:$PATH"
    "$venv/bin/ruff" check immu_action tests benchmarks
    "$venv/bin/mypy"
    exec "$venv/bin/python" -m pytest --durations=10 "$@"
    ;;
  *)
    sed -n '2,7s/^# \{0,1\}//p' "$0" >&2
    exit 2
    ;;
esac
