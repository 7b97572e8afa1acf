"""Durations as ``immu.yml`` writes them: ``90``, ``90s``, ``10m``, ``1h30m``, ``500ms``, ``1.5s``.

A bare number is seconds. Units combine largest first, each at most once, as Go's
``time.ParseDuration`` and Compose do, so ``1h30m`` works and ``30m1h`` is refused.
"""

from __future__ import annotations

import re

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_NUMBER = r"(?:\d+(?:\.\d+)?|\.\d+)"
# One optional group per unit, in descending order; `ms` before `m` so "500ms" is not "500m" + "s".
_DURATION = re.compile(
    rf"^(?:(?P<h>{_NUMBER})h)?(?:(?P<m>{_NUMBER})m(?!s))?(?:(?P<s>{_NUMBER})s)?"
    rf"(?:(?P<ms>{_NUMBER})ms)?$"
)
_BARE = re.compile(rf"^{_NUMBER}$")

DURATION_PATTERN = (
    rf"^(?=.)(?:{_NUMBER}|(?:{_NUMBER}h)?(?:{_NUMBER}m(?!s))?(?:{_NUMBER}s)?(?:{_NUMBER}ms)?)$"
)
"""The same grammar as one regular expression, for the JSON Schema (a bare number or units)."""

DURATION_HINT = "a number of seconds or units like 90s, 10m, 1h30m, 500ms, 1.5s"


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ``ValueError`` naming the valid forms."""
    value = text.strip()
    if _BARE.match(value):
        return float(value)
    match = _DURATION.match(value)
    if not value or match is None or not any(match.groupdict().values()):
        raise ValueError(f"`{text}` is not a duration")
    return round(
        sum(float(number) * _UNITS[unit] for unit, number in match.groupdict().items() if number),
        6,
    )


def format_duration(seconds: float) -> str:
    """A short human form of ``seconds`` (``1h30m``, ``90s``, ``500ms``) for messages."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    if whole != seconds:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts)
