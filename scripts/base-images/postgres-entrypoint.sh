#!/bin/bash
# Entrypoint of immu-base/postgres:15, modelled on the official postgres image's common case:
#   POSTGRES_PASSWORD (required unless POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_USER (postgres),
#   POSTGRES_DB (= POSTGRES_USER), POSTGRES_HOST_AUTH_METHOD (md5; scram-sha-256 or trust),
#   POSTGRES_INITDB_ARGS, /docker-entrypoint-initdb.d/*.sql|*.sh on first start.
# The default network auth is md5 (the official image uses scram-sha-256) because Debian
# bookworm's python3-pg8000 (1.10.6) predates SCRAM support.
set -Eeuo pipefail

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_HOST_AUTH_METHOD:=md5}"
export PGDATA

die() { echo "docker-entrypoint: error: $*" >&2; exit 1; }

check_settings() {
    case "$POSTGRES_HOST_AUTH_METHOD" in
        md5 | scram-sha-256 | trust) ;;
        *) die "POSTGRES_HOST_AUTH_METHOD='$POSTGRES_HOST_AUTH_METHOD'; use md5, scram-sha-256 or trust" ;;
    esac
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
        die "the database is uninitialized and POSTGRES_PASSWORD is not set; set it (e.g. -e POSTGRES_PASSWORD=secret) or POSTGRES_HOST_AUTH_METHOD=trust"
    fi
}

psql_init() {
    # Talks to the temporary server through its private socket only.
    psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet -h "$INIT_SOCKET_DIR" -U "$POSTGRES_USER" "$@"
}

run_init_scripts() {
    local f
    shopt -s nullglob
    # shellcheck disable=SC1090  # user-provided init scripts are sourced, as the official image does
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sql) echo "docker-entrypoint: running $f"; psql_init -d "$POSTGRES_DB" -f "$f" ;;
            *.sh) echo "docker-entrypoint: sourcing $f"; . "$f" ;;
            *) echo "docker-entrypoint: ignoring $f" ;;
        esac
    done
    shopt -u nullglob
}

init_cluster() {
    check_settings
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of words on purpose.
    initdb --username="$POSTGRES_USER" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" ${POSTGRES_INITDB_ARGS:-} -D "$PGDATA"
    {
        echo "listen_addresses = '*'"
        if [ "$POSTGRES_HOST_AUTH_METHOD" = md5 ]; then echo "password_encryption = md5"; fi
    } >>"$PGDATA/postgresql.conf"
    echo "host all all all $POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

    # A temporary server on a private socket: pg_isready on the default socket (the usual
    # healthcheck) must not report ready before initialisation has finished.
    INIT_SOCKET_DIR="$(mktemp -d)"
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=$INIT_SOCKET_DIR" start
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        psql_init -d postgres -v user="$POSTGRES_USER" -v pw="$POSTGRES_PASSWORD" <<'SQL'
ALTER ROLE :"user" WITH PASSWORD :'pw';
SQL
    fi
    if [ "$POSTGRES_DB" != postgres ]; then
        psql_init -d postgres -v db="$POSTGRES_DB" <<'SQL'
CREATE DATABASE :"db";
SQL
    fi
    run_init_scripts
    pg_ctl -D "$PGDATA" -m fast -w stop
    rm -rf "$INIT_SOCKET_DIR"
    echo "docker-entrypoint: PostgreSQL init process complete; ready for start up."
}

# `docker run image -c foo=bar` means "postgres -c foo=bar", as in the official image.
if [ "${1:0:1}" = - ]; then set -- postgres "$@"; fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    # setpriv (util-linux, always present) drops root and execs: no extra process stays around.
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ "$1" = postgres ]; then
    if [ ! -s "$PGDATA/PG_VERSION" ]; then init_cluster; fi
    # exec: postgres becomes PID 1 and receives docker's stop signal itself.
    exec "$@"
fi
exec "$@"
