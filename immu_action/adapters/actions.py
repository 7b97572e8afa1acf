"""GitHub Actions runtime: detection, ``::group::``, outputs, step summary, masks, warnings."""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from immu_action.core.context import GitHubContext, parse_context
from immu_action.errors import BadInput


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


@contextmanager
def fenced_group(title: str) -> Iterator[None]:
    """A folded group whose content comes from user or PR code (build logs, pulls, test
    output): fenced with a fresh token, so nothing printed inside can issue a command."""
    with group(title), untrusted_output():
        yield


STEP_SUMMARY_LIMIT = 1024 * 1024  # bytes GitHub accepts in one step's summary file


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


def _delimiter(values: list[str]) -> str:
    """A random heredoc delimiter that occurs in none of the values (output injection)."""
    while True:
        token = f"ghadelimiter_{secrets.token_hex(16)}"
        if not any(token in v for v in values):
            return token


def set_outputs(outputs: dict[str, str], *, path: str | None = None) -> bool:
    """Append ``outputs`` to ``$GITHUB_OUTPUT`` in the multiline-safe heredoc form.

    Returns False (writing nothing) outside Actions. Names are validated because a newline
    in a name would let a value define other outputs.
    """
    target = path or os.environ.get("GITHUB_OUTPUT")
    if not target:
        return False
    chunks = []
    for name, value in outputs.items():
        if not name or any(c in name for c in "\r\n=<"):
            raise ValueError(f"invalid output name {name!r}")
        delim = _delimiter([value])
        chunks.append(f"{name}<<{delim}\n{value}\n{delim}\n")
    with open(target, "a", encoding="utf-8") as f:
        f.write("".join(chunks))
    return True


def append_step_summary(markdown: str, *, path: str | None = None,
                        limit: int = STEP_SUMMARY_LIMIT) -> bool:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY``, cut so the file stays within 1 MiB.

    GitHub drops a summary over the limit entirely, so a cut summary (with a note) is
    better than none. Returns False outside Actions.
    """
    target = path or os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    used = os.path.getsize(target) if os.path.exists(target) else 0
    data = (markdown.rstrip("\n") + "\n").encode()
    room = limit - used
    if len(data) > room:
        note = b"\n\n(step summary truncated to GitHub's 1 MiB limit)\n"
        data = data[: max(room - len(note), 0)].decode(errors="ignore").encode() + note
        data = data if len(data) <= room else b""
    with open(target, "ab") as f:
        f.write(data)
    return True


def load_context(environ: Mapping[str, str] | None = None) -> GitHubContext:
    """The run's ``GitHubContext`` from the environment and ``$GITHUB_EVENT_PATH``'s payload.

    A missing event file is an empty payload (``act`` and local runs); an unreadable or
    non-JSON one is bad input naming the file.
    """
    env = os.environ if environ is None else environ
    event: dict[str, Any] = {}
    path = env.get("GITHUB_EVENT_PATH", "")
    if path and os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                loaded = json.load(f)
        except (OSError, ValueError) as e:
            raise BadInput(f"GITHUB_EVENT_PATH={path}: cannot read the event payload "
                           f"as JSON ({e})") from e
        event = loaded if isinstance(loaded, dict) else {}
    return parse_context(env, event)
