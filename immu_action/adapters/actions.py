"""GitHub Actions runtime files: outputs, the step summary, and the run's context (what is
printed, groups, fences, masks and warnings included, lives in ``immu_action.output``)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from immu_action.core.context import GitHubContext, parse_context
from immu_action.errors import BadInput
from immu_action.output import add_mask, in_actions, warning

__all__ = ["add_mask", "append_step_summary", "in_actions", "load_context", "set_outputs",
           "warning"]


STEP_SUMMARY_LIMIT = 1024 * 1024  # bytes GitHub accepts in one step's summary file


def _delimiter(values: list[str]) -> str:
    """A random heredoc delimiter that occurs in none of the values (output injection)."""
    while True:
        token = f"ghadelimiter_{os.urandom(16).hex()}"
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
