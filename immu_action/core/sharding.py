"""A run split over matrix jobs (pure): which suites a shard runs, and the durations that
balance the split, taken from the results stored with an earlier digest.

GitHub Actions runs the shards (a matrix); nothing here schedules work. A ``split`` suite
runs on every shard with ``IMMU_SHARD``/``IMMU_SHARDS`` set, and its runner takes its part
(pytest-split, ``jest --shard``, or a few lines of conftest): the test durations of the last
promoted digest are handed to it in a file. ``whole`` suites are spread over the shards,
longest first onto the least loaded shard (by their stored durations; without history,
in spec order, round robin).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from immu_action.errors import BadInput


@dataclass(frozen=True, kw_only=True)
class Shard:
    """This job's part of a sharded run: ``index`` of ``total``, counted from 1."""

    index: int
    total: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.total:
            raise ValueError(f"shard {self.index}/{self.total}: the index must be 1 to "
                             f"{self.total}")

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


DURATIONS_PATH = "/immu/shard/durations.json"
"""Where a split suite finds the stored test durations (pytest-split's JSON format)."""


def parse_shard(index: str | int | None, total: str | int | None) -> Shard | None:
    """``IMMU_SHARD``/``IMMU_SHARDS`` (or the flags) as a Shard; None when not sharded."""
    if index in (None, "") and total in (None, ""):
        return None
    try:
        i, n = int(str(index)), int(str(total))
    except ValueError:
        raise BadInput(f"shard {index!r} of {total!r}: both must be whole numbers, e.g. "
                       "--shard 2 --shards 3 (IMMU_SHARD=2, IMMU_SHARDS=3)") from None
    if n < 1 or not 1 <= i <= n:
        raise BadInput(f"shard {i} of {n}: the shard must be 1 to the number of shards "
                       f"({n}), and there must be at least one shard")
    return Shard(index=i, total=n)


@dataclass(frozen=True, kw_only=True)
class Durations:
    """Seconds per suite and per test (``classname.name``) from earlier stored results."""

    suites: Mapping[str, float] = field(default_factory=dict)
    tests: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # suite -> name -> s
    source: str | None = None  # the digest they come from


def durations_from(statements: Iterable[Mapping[str, Any]], source: str | None) -> Durations:
    """Durations summed over the statements of one run (its shards)."""
    from immu_action.core.attestation import EXTENSION  # not imported before a build starts

    suites: dict[str, float] = {}
    tests: dict[str, dict[str, float]] = {}
    for doc in statements:
        ext = (doc.get("predicate") or {}).get(EXTENSION) or {}
        for suite in ext.get("suites") or []:
            name = str(suite.get("name"))
            suites[name] = suites.get(name, 0.0) + float(suite.get("durationSeconds") or 0.0)
            per = tests.setdefault(name, {})
            for t in suite.get("tests") or []:
                per[str(t.get("name"))] = float(t.get("durationSeconds") or 0.0)
    return Durations(suites=suites, tests=tests, source=source)


def assign_whole(suites: Sequence[str], total: int, durations: Durations) -> dict[str, int]:
    """The shard (1-based) of each ``whole`` suite: longest first onto the least loaded
    shard; suites without a stored duration count as the average of those with one."""
    known = [durations.suites[s] for s in suites if s in durations.suites]
    default = sum(known) / len(known) if known else 1.0
    cost = {s: durations.suites.get(s, default) for s in suites}
    order = sorted(suites, key=lambda s: (-cost[s], suites.index(s))) if known else list(suites)
    load = [0.0] * total
    out: dict[str, int] = {}
    for suite in order:
        shard = min(range(total), key=lambda i: (load[i], i))
        out[suite] = shard + 1
        load[shard] += cost[suite]
    return out


def shard_suites(suites: Mapping[str, str], shard: Shard, durations: Durations) -> list[str]:
    """The suites (name -> ``split``/``whole``, in spec order) that ``shard`` runs."""
    whole = [n for n, how in suites.items() if how == "whole"]
    placed = assign_whole(whole, shard.total, durations)
    return [n for n, how in suites.items() if how != "whole" or placed[n] == shard.index]


_CLASS = re.compile(r"^Test")


def pytest_nodeid(name: str) -> str:
    """A JUnit ``classname.name`` of pytest back to its node id, for pytest-split:
    ``tests.unit.test_store.TestAdd.test_x`` -> ``tests/unit/test_store.py::TestAdd::test_x``
    (classes are the ``Test*`` parts, as pytest collects them)."""
    parts = name.split(".")
    if len(parts) < 2:
        return name
    *path, test = parts
    classes: list[str] = []
    while path and _CLASS.match(path[-1]):
        classes.insert(0, path.pop())
    if not path:
        return name
    return "::".join(["/".join(path) + ".py", *classes, test])


def durations_file(durations: Durations, suite: str) -> bytes | None:
    """The durations of ``suite``'s tests as pytest-split reads them (node id -> seconds,
    the JUnit names kept beside for other runners); None without history."""
    tests = durations.tests.get(suite) or {}
    if not tests:
        return None
    out = {pytest_nodeid(n): s for n, s in tests.items()}
    out.update({n: s for n, s in tests.items() if n not in out})
    return json.dumps(out, sort_keys=True, indent=1).encode()
