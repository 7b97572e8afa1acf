"""``python -m app``: serve the notes API on ``$PORT`` (8000) using ``$DATABASE_URL``."""

from __future__ import annotations

import logging
import os
import signal
import socketserver
import sys
from types import FrameType
from wsgiref.simple_server import WSGIServer, make_server

from app.store import MemoryStore, PostgresStore
from app.web import make_app


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """One thread per request, so a slow client does not block the health check."""

    daemon_threads = True


def _stop(signum: int, frame: FrameType | None) -> None:
    # As PID 1 in a container SIGTERM has no default action: exit on it explicitly.
    raise SystemExit(0)


def main() -> int:
    """Open the store, then serve until SIGTERM/SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    url = os.environ.get("DATABASE_URL")
    store: MemoryStore | PostgresStore
    if url:
        database = PostgresStore(url)
        database.init_schema()
        store = database
    else:
        logging.warning("DATABASE_URL is not set: notes are kept in memory only")
        store = MemoryStore()
    port = int(os.environ.get("PORT", "8000"))
    signal.signal(signal.SIGTERM, _stop)
    with make_server("0.0.0.0", port, make_app(store), server_class=ThreadingWSGIServer) as httpd:
        logging.info("listening on :%d", port)
        try:
            httpd.serve_forever()
        except (SystemExit, KeyboardInterrupt):
            logging.info("shutting down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
