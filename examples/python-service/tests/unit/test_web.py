"""Unit tests of the HTTP API over the in-memory store (no services needed)."""

from __future__ import annotations

from app.store import MAX_TEXT, MemoryStore
from app.web import make_app
from wsgi_client import call


def test_health_and_readiness() -> None:
    app = make_app(MemoryStore())
    assert call(app, "GET", "/healthz") == (200, {"status": "ok"})
    assert call(app, "GET", "/readyz") == (200, {"status": "ready"})


def test_post_then_list_newest_first() -> None:
    app = make_app(MemoryStore())
    assert call(app, "POST", "/notes", {"text": "first"})[0] == 201
    status, created = call(app, "POST", "/notes", {"text": "second ✓"})
    assert status == 201 and created["id"] == 2 and created["text"] == "second ✓"
    status, listing = call(app, "GET", "/notes")
    assert status == 200 and listing["count"] == 2
    assert [n["text"] for n in listing["notes"]] == ["second ✓", "first"]
    newest = call(app, "GET", "/notes", query="limit=1")[1]["notes"]
    assert [n["text"] for n in newest] == ["second ✓"]


def test_rejects_bad_input_with_a_reason() -> None:
    app = make_app(MemoryStore())
    assert call(app, "POST", "/notes", b"{not json")[0] == 400
    status, body = call(app, "POST", "/notes", {"text": "  "})
    assert status == 422 and "non-empty" in body["error"]
    status, body = call(app, "POST", "/notes", {"text": "x" * (MAX_TEXT + 1)})
    assert status == 422 and str(MAX_TEXT) in body["error"]
    status, body = call(app, "GET", "/notes", query="limit=0")
    assert status == 400 and "limit" in body["error"]


def test_unknown_routes_and_methods() -> None:
    app = make_app(MemoryStore())
    assert call(app, "GET", "/nope")[0] == 404
    assert call(app, "DELETE", "/notes")[0] == 405


def test_store_failure_is_a_503_not_a_traceback() -> None:
    class Down(MemoryStore):
        def ping(self) -> None:
            raise ConnectionError("db is down")

    status, body = call(make_app(Down()), "GET", "/readyz")
    assert status == 503 and body["error"] == "db is down"
