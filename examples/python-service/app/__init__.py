"""A small notes service: a WSGI app (stdlib only) backed by PostgreSQL through pg8000."""
