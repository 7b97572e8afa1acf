"""Calls the WSGI app in-process, the way a server would (a helper of the unit tests)."""

from __future__ import annotations

import io
import json
from typing import Any
from wsgiref.util import setup_testing_defaults


def call(app: Any, method: str, path: str, body: Any = None, query: str = "") -> tuple[int, Any]:
    """Run one request through ``app``; return (status code, decoded JSON body)."""
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
                               "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw)}
    setup_testing_defaults(environ)
    seen: dict[str, str] = {}
    chunks = app(environ, lambda status, headers: seen.update(status=status))
    return int(seen["status"].split()[0]), json.loads(b"".join(chunks))
