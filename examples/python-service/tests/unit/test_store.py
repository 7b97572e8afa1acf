"""Unit tests of DATABASE_URL parsing and note validation."""

from __future__ import annotations

import pytest
from app.store import check_text, parse_database_url


def test_parses_a_full_url_with_escapes() -> None:
    assert parse_database_url("postgresql://app:p%40ss@db:6543/notes") == {
        "user": "app", "password": "p@ss", "host": "db", "port": 6543, "database": "notes"}


def test_defaults_port_and_database() -> None:
    params = parse_database_url("postgres://postgres:pw@db")
    assert params["port"] == 5432 and params["database"] == "postgres"


@pytest.mark.parametrize("url", ["mysql://u:p@h/d", "postgresql:///db", "postgresql://h/db"])
def test_rejects_unusable_urls(url: str) -> None:
    with pytest.raises(ValueError, match="DATABASE_URL"):
        parse_database_url(url)


def test_check_text() -> None:
    assert check_text("hello") == "hello"
    for bad in (None, 3, "", "   "):
        with pytest.raises(ValueError):
            check_text(bad)
