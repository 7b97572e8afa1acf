# immu-base/postgres:15 - Debian's PostgreSQL 15 with an entrypoint that behaves like the
# official postgres image for the common case (POSTGRES_PASSWORD/USER/DB, initdb on first start).
FROM immu-base/debian:bookworm
ENV PG_MAJOR=15 \
    PGDATA=/var/lib/postgresql/data \
    PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh \
 && mkdir -p "$PGDATA" /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod 700 "$PGDATA" && chmod 2777 /var/run/postgresql
# No VOLUME: test databases are disposable and anonymous volumes would outlive their containers.
WORKDIR /var/lib/postgresql
ENTRYPOINT ["docker-entrypoint.sh"]
# SIGINT = PostgreSQL "fast" shutdown (as the official image): docker stop never waits on clients.
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
