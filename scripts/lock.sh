#!/usr/bin/env bash
# The action's dependency lock: exact versions with the hashes of every file PyPI has for them,
# from pyproject.toml's [project.dependencies]. The action installs it with --require-hashes,
# so a new release of a dependency never changes what `uses: org/immu-action@v1` runs.
#   scripts/lock.sh           rewrite requirements/action.lock
#   scripts/lock.sh --check   exit 1 when the lock no longer satisfies pyproject.toml
# pip-tools runs from a venv of its own in the cache; the machine's pip configuration (local
# wheel folders, extra indexes) is ignored: the lock names what PyPI serves.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tools=${IMMU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/immu-action}/pip-tools-7.7.0
export PIP_CONFIG_FILE=/dev/null
# ...but not the CA bundle: PyPI may be reached through a TLS-inspecting proxy.
if [[ -z ${PIP_CERT:-} && -f /etc/ssl/certs/ca-certificates.crt ]]; then
  export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
fi
if [[ ! -x $tools/bin/pip-compile ]]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install -q --disable-pip-version-check "pip-tools==7.7.0"
fi
if [[ ${1:-} == --check ]]; then
  exec "$root/.venv/bin/python" -m pytest -q tests/unit/test_lock.py
fi
"$tools/bin/pip-compile" -q --generate-hashes --strip-extras --allow-unsafe \
  --no-emit-index-url --no-emit-find-links --output-file requirements/action.lock pyproject.toml
echo "lock: requirements/action.lock ($(grep -c '==' requirements/action.lock) packages)"
