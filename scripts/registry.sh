#!/usr/bin/env bash
# Start/stop a real distribution registry (Debian's docker-registry) on loopback with
# htpasswd auth (the default) or token auth, and filesystem storage, for integration tests
# and benchmarks.
#
#   scripts/registry.sh start NAME PORT   -> prints "root=<dir> data=<dir> log=<file> url=<url>"
#   scripts/registry.sh stop NAME
#
# Credentials: IMMU_REGISTRY_TEST_USER / IMMU_REGISTRY_TEST_PASSWORD (defaults immu / immu-test-pw).
# State lives under ${IMMU_REGISTRY_ROOT:-${TMPDIR:-/tmp}/immu-registry}/NAME.
#
# Token auth (how GHCR, Docker Hub, ECR and Harbor work): IMMU_REGISTRY_AUTH=token and
# IMMU_REGISTRY_TOKEN_REALM=http://127.0.0.1:PORT/token (the token server, e.g.
# tests/support/token_server.py, started by the caller once this prints). A self-signed RSA
# key + certificate are made with openssl under the instance root; the registry trusts tokens
# signed by that key (JWT header x5c). Service/issuer: IMMU_REGISTRY_TOKEN_SERVICE (default
# immu-registry) / IMMU_REGISTRY_TOKEN_ISSUER (default immu-token-issuer). The start line
# then also prints "key=<pem> cert=<pem> service=<s> issuer=<i>".
set -euo pipefail

cmd=${1:-}; name=${2:-}
[[ -n "$cmd" && -n "$name" ]] || { echo "usage: $0 start NAME PORT | stop NAME" >&2; exit 2; }
[[ "$name" =~ ^[A-Za-z0-9_.-]+$ ]] || { echo "registry.sh: bad NAME '$name'" >&2; exit 2; }
base=${IMMU_REGISTRY_ROOT:-${TMPDIR:-/tmp}/immu-registry}
root="$base/$name"

ensure_packages() {
  local missing=()
  command -v docker-registry >/dev/null || missing+=(docker-registry)
  command -v htpasswd >/dev/null || missing+=(apache2-utils)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)  # the readiness probe below
  ((${#missing[@]} == 0)) && return 0
  local sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
  # Installing the package must not start a system-wide registry on :5000.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
    || { $sudo apt-get update >&2 && $sudo env DEBIAN_FRONTEND=noninteractive \
           apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
}

start() {
  local port=${1:-}
  [[ "$port" =~ ^[0-9]+$ ]] || { echo "registry.sh: bad PORT '$port'" >&2; exit 2; }
  ensure_packages
  if [[ -f "$root/pid" ]] && kill -0 "$(cat "$root/pid")" 2>/dev/null; then
    echo "registry.sh: '$name' already running (pid $(cat "$root/pid"))" >&2; exit 1
  fi
  local mode=${IMMU_REGISTRY_AUTH:-htpasswd} auth extra=""
  rm -rf "$root"; mkdir -p "$root/data"
  case "$mode" in
    htpasswd)
      htpasswd -Bbn "${IMMU_REGISTRY_TEST_USER:-immu}" \
        "${IMMU_REGISTRY_TEST_PASSWORD:-immu-test-pw}" > "$root/htpasswd"
      auth="  htpasswd: {realm: immu-test, path: $root/htpasswd}" ;;
    token)
      local realm=${IMMU_REGISTRY_TOKEN_REALM:-}
      [[ "$realm" =~ ^https?://[^[:space:]]+$ ]] || {
        echo "registry.sh: IMMU_REGISTRY_AUTH=token needs IMMU_REGISTRY_TOKEN_REALM=" \
             "http://HOST:PORT/token (got '$realm')" >&2; exit 2; }
      local service=${IMMU_REGISTRY_TOKEN_SERVICE:-immu-registry}
      local issuer=${IMMU_REGISTRY_TOKEN_ISSUER:-immu-token-issuer}
      # Self-signed: the certificate is its own root, so the bundle is the certificate.
      openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$issuer" \
        -keyout "$root/token.key" -out "$root/token.crt" 2>/dev/null \
        || { echo "registry.sh: openssl could not make the token certificate" >&2; exit 1; }
      auth="  token: {realm: \"$realm\", service: \"$service\", issuer: \"$issuer\","
      auth+=" rootcertbundle: $root/token.crt}"
      extra=" key=$root/token.key cert=$root/token.crt service=$service issuer=$issuer" ;;
    *) echo "registry.sh: IMMU_REGISTRY_AUTH must be htpasswd or token (got '$mode')" >&2
       exit 2 ;;
  esac
  cat > "$root/config.yml" <<YAML
version: 0.1
log:
  level: info
  formatter: text
  accesslog: {disabled: false}
storage:
  filesystem: {rootdirectory: $root/data}
  delete: {enabled: true}
  cache: {blobdescriptor: inmemory}
http:
  addr: 127.0.0.1:$port
  secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
auth:
$auth
YAML
  # setsid: the registry outlives this script (the caller stops it with `stop`).
  setsid docker-registry serve "$root/config.yml" > "$root/registry.log" 2>&1 < /dev/null &
  echo $! > "$root/pid"
  for _ in $(seq 1 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" || true)
    if [[ "$code" == 401 ]]; then
      echo "root=$root data=$root/data log=$root/registry.log url=http://127.0.0.1:$port$extra"
      return 0
    fi
    kill -0 "$(cat "$root/pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "registry.sh: '$name' did not answer 401 on 127.0.0.1:$port; log:" >&2
  tail -n 20 "$root/registry.log" >&2 || true
  stop; exit 1
}

stop() {
  [[ -f "$root/pid" ]] || return 0
  local pid; pid=$(cat "$root/pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$root/pid"
}

case "$cmd" in
  start) start "${3:-}" ;;
  stop) stop ;;
  *) echo "usage: $0 start NAME PORT | stop NAME" >&2; exit 2 ;;
esac
