"""The HTTP API as a WSGI application (stdlib only)."""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from app.store import Note

log = logging.getLogger("notes")
MAX_BODY = 64 * 1024


class Store(Protocol):
    """What the app needs from a store (MemoryStore and PostgresStore both fit)."""

    def ping(self) -> None: ...
    def add(self, text: object) -> Note: ...
    def recent(self, limit: int = 100) -> list[Note]: ...
    def count(self) -> int: ...


class HttpError(Exception):
    """An error answered with ``status`` and a JSON ``{"error": message}`` body."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json_body(environ: dict[str, Any]) -> Any:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise HttpError("400 Bad Request", "invalid Content-Length") from None
    if length > MAX_BODY:
        raise HttpError("413 Payload Too Large", f"body over {MAX_BODY} bytes")
    try:
        return json.loads(environ["wsgi.input"].read(length) or b"null")
    except ValueError:
        raise HttpError("400 Bad Request", "body is not valid JSON") from None


def _limit(environ: dict[str, Any]) -> int:
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    raw = query.get("limit", ["100"])[0]
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise HttpError("400 Bad Request", f"limit must be an integer 1..1000, got {raw!r}")
    return int(raw)


def _route(store: Store, method: str, path: str, environ: dict[str, Any]) -> tuple[str, Any]:
    if path == "/healthz":
        return "200 OK", {"status": "ok"}
    if path == "/readyz":
        try:
            store.ping()
        except Exception as e:  # any driver error means "not ready", reported, not raised
            return "503 Service Unavailable", {"status": "unavailable", "error": str(e)}
        return "200 OK", {"status": "ready"}
    if path == "/notes" and method == "GET":
        return "200 OK", {"notes": [n.as_json() for n in store.recent(_limit(environ))],
                          "count": store.count()}
    if path == "/notes" and method == "POST":
        body = _json_body(environ)
        try:
            note = store.add(body.get("text") if isinstance(body, dict) else None)
        except ValueError as e:
            raise HttpError("422 Unprocessable Entity", str(e)) from None
        return "201 Created", note.as_json()
    if path == "/notes":
        raise HttpError("405 Method Not Allowed", f"{method} is not allowed on /notes")
    raise HttpError("404 Not Found", f"no route for {path}")


def make_app(store: Store) -> Callable[..., Iterable[bytes]]:
    """The WSGI callable serving ``/healthz``, ``/readyz`` and ``/notes`` from ``store``."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/")
        try:
            status, payload = _route(store, method, path, environ)
        except HttpError as e:
            status, payload = e.status, {"error": str(e)}
        except Exception:  # never leak a traceback to clients; log it for operators
            log.exception("%s %s failed", method, path)
            status, payload = "500 Internal Server Error", {"error": "internal error"}
        body = json.dumps(payload).encode()
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(body)))])
        return [body]

    return app
