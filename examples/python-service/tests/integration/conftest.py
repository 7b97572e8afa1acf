"""Fixtures for tests against the real PostgreSQL service named by ``DATABASE_URL``."""

from __future__ import annotations

import os

import pytest
from app.store import PostgresStore


@pytest.fixture()
def database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.fail("DATABASE_URL is not set: run this suite with the 'db' service "
                    "(immu.yml suite 'integration'), e.g. postgresql://postgres:test@db:5432/notes")
    return url


@pytest.fixture()
def store(database_url: str) -> PostgresStore:
    """A store on an empty ``notes`` table."""
    s = PostgresStore(database_url)
    s.init_schema()
    s._run("TRUNCATE notes RESTART IDENTITY", fetch=False)
    return s
