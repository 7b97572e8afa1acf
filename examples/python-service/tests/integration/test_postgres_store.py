"""The store against the real PostgreSQL service."""

from __future__ import annotations

import urllib.parse

import pytest
from app.store import PostgresStore


def test_roundtrip_survives_a_new_connection(store: PostgresStore, database_url: str) -> None:
    first = store.add("buy milk")
    second = store.add("naïve café ✓")
    assert (first.id, second.id) == (1, 2)
    again = PostgresStore(database_url)  # a fresh store: the rows come from the server
    assert [n.text for n in again.recent()] == ["naïve café ✓", "buy milk"]
    assert again.count() == 2
    assert second.created_at.endswith("+00:00")


def test_schema_init_is_idempotent(store: PostgresStore) -> None:
    store.add("kept")
    store.init_schema()
    assert store.count() == 1


def test_ping(store: PostgresStore) -> None:
    store.ping()


def test_wrong_password_is_refused(database_url: str) -> None:
    parts = urllib.parse.urlsplit(database_url)
    netloc = f"{parts.username}:definitely-wrong@{parts.hostname}:{parts.port or 5432}"
    bad = PostgresStore(urllib.parse.urlunsplit(parts._replace(netloc=netloc)))
    with pytest.raises(Exception, match="password authentication failed"):
        bad.ping()
