"""GitHub Actions runtime: detection, ``::group::`` folding (outputs/summary/masks: issue 4)."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager


def in_actions() -> bool:
    """True when running inside a GitHub Actions job."""
    return os.environ.get("GITHUB_ACTIONS") == "true"


@contextmanager
def group(title: str) -> Iterator[None]:
    """Fold what is printed inside into a collapsible group in the Actions log."""
    if not in_actions():
        yield
        return
    sys.stderr.write(f"::group::{title}\n")
    sys.stderr.flush()
    try:
        yield
    finally:
        sys.stderr.write("::endgroup::\n")
        sys.stderr.flush()


@contextmanager
def untrusted_output() -> Iterator[None]:
    """Stop the runner from obeying ``::commands::`` in what is printed inside (test output)."""
    if not in_actions():
        yield
        return
    token = secrets.token_hex(16)
    sys.stderr.write(f"::stop-commands::{token}\n")
    sys.stderr.flush()
    try:
        yield
    finally:
        sys.stderr.write(f"::{token}::\n")
        sys.stderr.flush()
