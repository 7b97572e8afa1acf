"""Everything the program prints: human messages, the one ``--json`` object, the log of
builds and containers, and the GitHub Actions workflow commands (groups, fences, masks,
warnings). Stdout carries only the JSON result; everything else goes to stderr.

Output that comes from user or pull-request code (build logs, pulls, test output, error
messages quoting them) is printed inside ``untrusted_output``: a fresh ``::stop-commands::``
token per stream, so it cannot issue workflow commands.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def say(message: str) -> None:
    """A human message on stderr."""
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def emit_json(payload: dict[str, Any]) -> None:
    """Write the single JSON result object to stdout."""
    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def log_to_stderr(text: str) -> None:
    """Default log sink: the engine's and the containers' output, as it comes."""
    sys.stderr.write(text)
    sys.stderr.flush()


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
    token = os.urandom(16).hex()  # secrets.token_hex, without importing hmac and OpenSSL
    sys.stderr.write(f"::stop-commands::{token}\n")
    sys.stderr.flush()
    try:
        yield
    finally:
        sys.stderr.write(f"::{token}::\n")
        sys.stderr.flush()


@contextmanager
def fenced_group(title: str) -> Iterator[None]:
    """A folded group whose content comes from user or PR code (build logs, pulls, test
    output): fenced with a fresh token, so nothing printed inside can issue a command."""
    with group(title), untrusted_output():
        yield


def _escape_data(text: str) -> str:
    """Workflow-command message escaping (as @actions/core does)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(name: str, message: str, **props: str) -> None:
    args = ",".join(f"{k}={_escape_property(v)}" for k, v in props.items() if v)
    sys.stderr.write(f"::{name}{' ' + args if args else ''}::{_escape_data(message)}\n")
    sys.stderr.flush()


def add_mask(value: str) -> None:
    """Ask the runner to hide ``value`` in the log (each line: the runner masks per line)."""
    for line in value.splitlines():
        if line.strip() and in_actions():
            _command("add-mask", line)


def warning(message: str, *, title: str = "") -> None:
    """A warning annotation on the run (plain stderr line outside Actions)."""
    if in_actions():
        _command("warning", message, title=title)
    else:
        sys.stderr.write(f"warning: {title + ': ' if title else ''}{message}\n")


