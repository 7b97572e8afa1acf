"""Notes storage: ``PostgresStore`` (pg8000) for the service, ``MemoryStore`` for unit tests."""

from __future__ import annotations

import threading
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

MAX_TEXT = 1000


@dataclass(frozen=True)
class Note:
    """One stored note."""

    id: int
    text: str
    created_at: str  # ISO 8601, UTC

    def as_json(self) -> dict[str, Any]:
        """The note as the API returns it."""
        return {"id": self.id, "text": self.text, "created_at": self.created_at}


def check_text(text: object) -> str:
    """Return ``text`` if it is a note body we accept; else raise ``ValueError`` saying why."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("'text' must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise ValueError(f"'text' is {len(text)} characters; at most {MAX_TEXT} are allowed")
    return text


def parse_database_url(url: str) -> dict[str, Any]:
    """``postgresql://user:password@host:port/db`` -> keyword arguments for ``pg8000.connect``."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL must start with postgresql://, got {parts.scheme!r}")
    if not parts.hostname or not parts.username:
        raise ValueError("DATABASE_URL must name a user and a host: postgresql://user:pw@host/db")
    return {
        "user": urllib.parse.unquote(parts.username),
        "password": urllib.parse.unquote(parts.password or ""),
        "host": parts.hostname,
        "port": parts.port or 5432,
        "database": urllib.parse.unquote(parts.path.lstrip("/")) or parts.username,
    }


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return str(value.astimezone(timezone.utc).isoformat())
    return str(value)


class MemoryStore:
    """Keeps notes in a list; what unit tests use instead of a database."""

    def __init__(self) -> None:
        self._notes: list[Note] = []
        self._lock = threading.Lock()

    def ping(self) -> None:
        """Always ready."""

    def add(self, text: object) -> Note:
        """Store a note (validated by ``check_text``) and return it."""
        with self._lock:
            note = Note(id=len(self._notes) + 1, text=check_text(text),
                        created_at=_iso(datetime.now(timezone.utc)))
            self._notes.append(note)
            return note

    def recent(self, limit: int = 100) -> list[Note]:
        """The newest notes first."""
        with self._lock:
            return list(reversed(self._notes))[:limit]

    def count(self) -> int:
        """How many notes exist."""
        with self._lock:
            return len(self._notes)


class PostgresStore:
    """Notes in a PostgreSQL table; one short connection per call keeps threads independent."""

    def __init__(self, url: str) -> None:
        self._params = parse_database_url(url)

    def _run(self, sql: str, args: tuple[Any, ...] = (), fetch: bool = True) -> list[Any]:
        import pg8000  # imported here so the unit suite needs no database driver at all

        conn = pg8000.connect(**self._params)
        try:
            cur = conn.cursor()
            cur.execute(sql, args)
            rows = list(cur.fetchall()) if fetch else []
            conn.commit()
            return rows
        finally:
            conn.close()

    def init_schema(self) -> None:
        """Create the table if it does not exist (idempotent)."""
        self._run(
            "CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, text text NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT now())",
            fetch=False,
        )

    def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        self._run("SELECT 1")

    def add(self, text: object) -> Note:
        """Store a note (validated by ``check_text``) and return it as the database recorded it."""
        rows = self._run("INSERT INTO notes (text) VALUES (%s) RETURNING id, text, created_at",
                         (check_text(text),))
        return Note(id=rows[0][0], text=rows[0][1], created_at=_iso(rows[0][2]))

    def recent(self, limit: int = 100) -> list[Note]:
        """The newest notes first."""
        rows = self._run("SELECT id, text, created_at FROM notes ORDER BY id DESC LIMIT %s",
                         (limit,))
        return [Note(id=r[0], text=r[1], created_at=_iso(r[2])) for r in rows]

    def count(self) -> int:
        """How many notes exist."""
        return int(self._run("SELECT count(*) FROM notes")[0][0])
