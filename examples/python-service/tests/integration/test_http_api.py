"""The real HTTP server (``python -m app``) end to end, storing notes in PostgreSQL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from app.store import PostgresStore

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, dict[str, Any]]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, json.loads(r.read())


@pytest.fixture()
def server(store: PostgresStore, database_url: str) -> Iterator[str]:
    """``python -m app`` as a child process, as the image's CMD runs it."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                _get(base + "/healthz")
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"the server exited with {proc.returncode}")
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0  # SIGTERM is a clean exit


def test_post_and_list_through_http(server: str) -> None:
    assert _get(server + "/readyz") == (200, {"status": "ready"})
    req = urllib.request.Request(server + "/notes", data=json.dumps({"text": "via http"}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 201 and json.loads(r.read())["text"] == "via http"
    status, listing = _get(server + "/notes")
    assert status == 200 and listing["count"] == 1
    assert listing["notes"][0]["text"] == "via http"
