#!/usr/bin/env bash
# Builds the project's base images offline (no image registry is reachable on this machine):
#
#   immu-base/busybox:1        FROM scratch + Debian's static busybox (fast integration tests)
#   immu-base/debian:bookworm  debootstrap --variant=minbase rootfs + this host's CA bundle
#   immu-base/python:3         stands in for python:3.x-slim (python3, pip, venv, pytest, pg8000)
#   immu-base/postgres:15      stands in for postgres:NN (POSTGRES_PASSWORD/USER/DB, port 5432)
#
# Usage: scripts/base-images.sh [busybox|debian|python|postgres ...]   (default: all)
# Run as root on Debian 12 with Docker running. Prints the names of the images it ensured, one a
# line, on stdout; progress goes to stderr. Idempotent: each image carries the label
# immu.base.hash=<sha256 of its inputs> and is skipped when the label already matches. The
# debootstrap result is cached as a tarball under ${XDG_CACHE_HOME:-$HOME/.cache}/immu-action/,
# keyed by the rootfs inputs, so images lost by the engine are re-created without debootstrap.
# Environment: IMMU_APT_MIRROR (default: the bookworm URI in this host's apt sources),
# IMMU_HOST_CA_BUNDLE (default: /etc/ssl/certs/ca-certificates.crt).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FILES="$HERE/base-images"
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/immu-action"
SUITE=bookworm
HOST_CA="${IMMU_HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
# The classic builder resolves `FROM <image ID>` and local tags without any registry; BuildKit
# (where installed) may try to resolve them remotely. Offline, the classic builder is the safe one.
export DOCKER_BUILDKIT=0
WORK=""
REPLACED=()

log() { printf '[base-images %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
sha() { sha256sum | cut -c1-64; }

cleanup() {
    [ -n "$WORK" ] && [ -d "$WORK" ] || return 0
    # debootstrap mounts proc/sys inside the target; never rm -rf across a mount point.
    awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r umount -l || true
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

usage() { sed -n '2,17s/^# \{0,1\}//p' "$SELF"; }

check_host() {
    [ "$(id -u)" = 0 ] || die "run as root (debootstrap and chroot need it)"
    command -v docker >/dev/null || die "the docker CLI is not installed"
    docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (start it: scripts/ensure-docker.sh)"
    [ -r "$HOST_CA" ] || die "CA bundle '$HOST_CA' not readable (set IMMU_HOST_CA_BUNDLE)"
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || missing+=(busybox-static)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 \
            || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; }
    fi
}

# The first URI serving "$SUITE" in the host's apt sources (deb822 .sources, then one-line .list).
apt_mirror() {
    if [ -n "${IMMU_APT_MIRROR:-}" ]; then echo "$IMMU_APT_MIRROR"; return; fi
    local uri
    uri="$(awk -v suite="$SUITE" '
        BEGIN { RS = ""; FS = "\n" }
        {
            types = ""; suites = ""; uris = ""; enabled = "yes"
            for (i = 1; i <= NF; i++) {
                if ($i ~ /^[ \t]*#/ || !match($i, /^[A-Za-z-]+:/)) continue
                key = tolower(substr($i, 1, RLENGTH - 1)); val = substr($i, RLENGTH + 1)
                if (key == "types") types = val; else if (key == "suites") suites = val
                else if (key == "uris") uris = val; else if (key == "enabled") enabled = val
            }
            if (enabled ~ /no/ || types !~ /(^|[ \t])deb([ \t]|$)/) next
            n = split(suites, s, /[ \t]+/)
            for (j = 1; j <= n; j++) if (s[j] == suite) { split(uris, u, /[ \t]+/); print (u[1] != "" ? u[1] : u[2]); exit }
        }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
    if [ -z "$uri" ]; then
        uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk -v suite="$SUITE" '
            $1 == "deb" { i = 2; if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
                          if ($(i + 1) == suite) { print $i; exit } }' || true)"
    fi
    [ -n "$uri" ] || die "no '$SUITE' source in /etc/apt/sources.list{,.d/*}; set IMMU_APT_MIRROR=<debian mirror URL>"
    echo "$uri"
}

packages() { sed -e 's/#.*//' -e 's/[[:space:]]//g' "$FILES/packages.txt" | grep -v '^$' | paste -sd, -; }

image_hash() { docker image inspect -f '{{index .Config.Labels "immu.base.hash"}}' "$1" 2>/dev/null || true; }

# docker build with the content-hash label; the context is a fresh directory we fill.
build_image() {
    local name=$1 hash=$2 dockerfile=$3 ctx=$4 started=$SECONDS id
    shift 4
    cp "$FILES/$dockerfile" "$ctx/Dockerfile"
    log "building $name"
    # The image this build replaces: removed at the end once untagged (see remove_replaced).
    REPLACED+=("$(docker image inspect -f '{{.Id}}' "$name" 2>/dev/null || true)")
    # The CLI's notes about the classic builder are noise here: show stderr only on failure.
    id="$(docker build -q --label "immu.base.hash=$hash" -t "$name" "$@" "$ctx" 2>"$WORK/build.err")" \
        || { cat "$WORK/build.err" >&2; die "docker build of $name failed"; }
    log "built $name ($id) in $((SECONDS - started)) s"
}

# Best effort, newest first (children before parents); only untagged images we labelled.
remove_replaced() {
    local i id
    for ((i = ${#REPLACED[@]} - 1; i >= 0; i--)); do
        id="${REPLACED[$i]}"
        [ -n "$id" ] || continue
        # "0 <hash>": no tag left and built by this script; anything else is not ours to remove.
        [[ "$(docker image inspect -f '{{len .RepoTags}} {{index .Config.Labels "immu.base.hash"}}' \
            "$id" 2>/dev/null)" =~ ^0\ [0-9a-f]{64}$ ]] || continue
        if docker rmi "$id" >/dev/null 2>&1; then log "removed replaced image ${id:7:12}"; fi
    done
}

# Fresh, or already there with the right hash? Prints nothing; returns 0 when a build is needed.
needs_build() {
    if [ "$(image_hash "$1")" = "$2" ]; then log "$1 is up to date (hash ${2:0:12})"; return 1; fi
    return 0
}

ensure_busybox() {
    local name=immu-base/busybox:1 hash ctx a
    hash="$( { echo busybox-v1; sha <"$SELF"; sha <"$FILES/busybox.Dockerfile"; sha </bin/busybox; } | sha)"
    if needs_build "$name" "$hash"; then
        ctx="$WORK/busybox"; mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/etc" "$ctx/rootfs/root" "$ctx/rootfs/tmp" "$ctx/rootfs/usr"
        cp /bin/busybox "$ctx/rootfs/bin/busybox"
        for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$ctx/rootfs/bin/$a"; done
        # One directory of applets, reachable under the usual PATH entries and shebangs.
        ln -s bin "$ctx/rootfs/sbin"; ln -s ../bin "$ctx/rootfs/usr/bin"; ln -s ../bin "$ctx/rootfs/usr/sbin"
        chmod 1777 "$ctx/rootfs/tmp"; chmod 700 "$ctx/rootfs/root"
        printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$ctx/rootfs/etc/passwd"
        printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$ctx/rootfs/etc/group"
        build_image "$name" "$hash" busybox.Dockerfile "$ctx"
    fi
    echo "$name"
}

# Everything that decides the debootstrap result; the rootfs tarball is cached under this key.
rootfs_key() {
    { echo "rootfs-v1 $SUITE $(dpkg --print-architecture) $MIRROR $PACKAGES"; declare -f make_rootfs; } | sha
}

make_rootfs() {
    local target=$1
    # Show each phase once (debootstrap prints lines per package); the full log is kept.
    if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$target" "$MIRROR" 2>&1 \
        | tee "$WORK/debootstrap.log" \
        | awk '/^[EW]:/ { print; fflush(); next }
               /^I: / { if (!seen[$2]++) { print "  " $0; fflush() } }' >&2; then
        tail -n 30 "$WORK/debootstrap.log" >&2
        die "debootstrap failed (mirror $MIRROR); full log above"
    fi
    # The entrypoint of immu-base/postgres creates its own cluster: drop the one postinst made.
    rm -rf "$target"/etc/postgresql/15/main "$target"/var/lib/postgresql/15/main
    rm -rf "$target"/var/cache/apt/archives/*.deb "$target"/var/lib/apt/lists/* "$target"/tmp/*
    # Docker provides these per container; the host's values must not leak into the image.
    : >"$target/etc/resolv.conf"; : >"$target/etc/hostname"
}

ensure_rootfs_tarball() {
    local key tarball started=$SECONDS
    key="$(rootfs_key)"; tarball="$CACHE/rootfs-$SUITE-$key.tar"
    if [ -s "$tarball" ]; then log "rootfs cache hit: $tarball" ; echo "$tarball"; return; fi
    log "debootstrap $SUITE from $MIRROR (about a minute) with: $PACKAGES"
    make_rootfs "$WORK/rootfs"
    log "packing rootfs"
    tar --numeric-owner -C "$WORK/rootfs" -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    # Keep the two newest rootfs tarballs (switching between two inputs stays cheap) and drop
    # older ones so the cache does not grow without bound (each is ~500 MB).
    find "$CACHE" -maxdepth 1 -name "rootfs-$SUITE-*.tar" -printf '%T@ %p\n' | sort -rn \
        | tail -n +3 | cut -d' ' -f2- | xargs -r rm -f --
    log "rootfs ready in $((SECONDS - started)) s ($(du -h "$tarball" | cut -f1))"
    echo "$tarball"
}

# The image `docker import`ed from the tarball of rootfs $1, if the engine still has it. Images
# built on it inherit its label (debian.Dockerfile blanks it, but intermediate layers keep it):
# the import is the one with a single layer.
imported_rootfs() {
    local ids
    ids="$(docker image ls -a -q --no-trunc --filter "label=immu.base.rootfs=$1" | sort -u)"
    [ -n "$ids" ] || return 0
    # shellcheck disable=SC2086  # one inspect call for all candidates: the IDs are words
    docker image inspect -f '{{len .RootFS.Layers}} {{.Id}}' $ids 2>/dev/null \
        | awk '$1 == 1 { print $2; exit }'
}

ensure_debian() {
    local name=immu-base/debian:bookworm key ctx tarball rootfs_id
    key="$(rootfs_key)"
    DEBIAN_HASH="$( { echo debian-v1; echo "$key"; sha <"$SELF"; sha <"$FILES/debian.Dockerfile"; sha <"$HOST_CA"; } | sha)"
    if needs_build "$name" "$DEBIAN_HASH"; then
        rootfs_id="$(imported_rootfs "$key")"
        if [ -z "$rootfs_id" ]; then
            tarball="$(ensure_rootfs_tarball)"
            log "importing $tarball"
            rootfs_id="$(docker import --change "LABEL immu.base.rootfs=$key" "$tarball")"
        fi
        ctx="$WORK/debian"; mkdir -p "$ctx"; cp "$HOST_CA" "$ctx/ca-certificates.crt"
        build_image "$name" "$DEBIAN_HASH" debian.Dockerfile "$ctx" --build-arg "ROOTFS=$rootfs_id"
    fi
    echo "$name"
}

ensure_python() {
    local name=immu-base/python:3 hash
    hash="$( { echo python-v1; echo "$DEBIAN_HASH"; sha <"$SELF"; sha <"$FILES/python.Dockerfile"; } | sha)"
    if needs_build "$name" "$hash"; then
        mkdir -p "$WORK/python"; build_image "$name" "$hash" python.Dockerfile "$WORK/python"
    fi
    echo "$name"
}

ensure_postgres() {
    local name=immu-base/postgres:15 hash
    hash="$( { echo postgres-v1; echo "$DEBIAN_HASH"; sha <"$SELF"; sha <"$FILES/postgres.Dockerfile"
               sha <"$FILES/postgres-entrypoint.sh"; } | sha)"
    if needs_build "$name" "$hash"; then
        mkdir -p "$WORK/postgres"; cp "$FILES/postgres-entrypoint.sh" "$WORK/postgres/"
        build_image "$name" "$hash" postgres.Dockerfile "$WORK/postgres"
    fi
    echo "$name"
}

main() {
    local want=("$@") w
    [ "${#want[@]}" -gt 0 ] || want=(busybox debian python postgres)
    for w in "${want[@]}"; do
        case "$w" in
            busybox | debian | python | postgres) ;;
            -h | --help) usage; exit 0 ;;
            *) die "unknown image '$w'; valid: busybox debian python postgres" ;;
        esac
    done
    check_host
    mkdir -p "$CACHE"
    # Two concurrent runs would debootstrap and tag twice: the second waits, then finds the hits.
    exec 9>"$CACHE/base-images.lock"
    if ! flock -n 9; then log "another base-images.sh is running; waiting for it"; flock 9; fi
    WORK="$(mktemp -d "$CACHE/work.XXXXXX")"
    local started=$SECONDS
    for w in "${want[@]}"; do
        case "$w" in
            busybox) ensure_busybox ;;
            *)
                # python and postgres build FROM debian and their hashes include its hash.
                if [ -z "${DEBIAN_HASH:-}" ]; then
                    MIRROR="$(apt_mirror)"; PACKAGES="$(packages)"; ensure_debian >/dev/null
                fi
                if [ "$w" = debian ]; then echo immu-base/debian:bookworm; else "ensure_$w"; fi
                ;;
        esac
    done
    remove_replaced
    log "done in $((SECONDS - started)) s"
}

main "$@"
