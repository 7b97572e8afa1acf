"""Where a run's time went: each stage's duration, and per suite when its services were
ready and when its test container ran, as seconds since the run started. ``--json`` carries
it as ``timings``; the log prints one line of it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

SUITE_EVENTS = ("services_ready", "started", "ended")


class Timeline:
    """A thread-safe record of stage durations and suite events (worker threads mark too)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._start = clock()
        self._lock = threading.Lock()
        self._stages: dict[str, float] = {}
        self._suites: dict[str, dict[str, float]] = {}
        self._current: tuple[str, float] | None = None

    def enter(self, stage: str) -> None:
        """Stage ``stage`` begins now, ending the one under way (a stage entered again adds
        to its time)."""
        now = self._clock()
        with self._lock:
            self._end(now)
            self._current = (stage, now)

    def close(self) -> None:
        """End the stage under way."""
        now = self._clock()
        with self._lock:
            self._end(now)

    def _end(self, now: float) -> None:
        if self._current is not None:
            name, began = self._current
            self._stages[name] = self._stages.get(name, 0.0) + now - began
            self._current = None

    def suite(self, suite: str, event: str) -> None:
        """Mark ``event`` (one of ``SUITE_EVENTS``) of ``suite`` now."""
        assert event in SUITE_EVENTS, event
        at = self._clock() - self._start
        with self._lock:
            self._suites.setdefault(suite, {})[f"{event}_s"] = round(at, 3)

    def as_dict(self) -> dict[str, Any]:
        """``{"total_s", "stages": {name: s}, "suites": {name: {event_s: s since start}}}``."""
        with self._lock:
            return {"total_s": round(self._clock() - self._start, 3),
                    "stages": {k: round(v, 3) for k, v in self._stages.items()},
                    "suites": {k: dict(v) for k, v in self._suites.items()}}


def timings_line(timings: Mapping[str, Any]) -> str:
    """``timings: build 0.3s, tests 4.1s (...); 4.8s in all`` for the log (stages under
    0.05 s are left out of the line, not of ``--json``)."""
    stages = timings.get("stages") or {}
    suites = timings.get("suites") or {}
    parts = []
    for name, spent in stages.items():
        if spent < 0.05 and not (name == "tests" and suites):
            continue
        text = f"{name} {spent:.1f}s"
        if name == "tests" and suites:
            text += " (" + ", ".join(_suite_text(s, e) for s, e in suites.items()) + ")"
        parts.append(text)
    return f"timings: {', '.join(parts) or 'none'}; {timings.get('total_s', 0):.1f}s in all"


def _suite_text(name: str, events: Mapping[str, float]) -> str:
    ready = events.get("services_ready_s")
    ran = (f"ran {events['started_s']:.1f}-{events['ended_s']:.1f}s"
           if "started_s" in events and "ended_s" in events else "did not run")
    return f"{name}: " + (f"services ready at {ready:.1f}s, " if ready is not None else "") + ran
