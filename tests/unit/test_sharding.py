"""Sharding decisions (pure): which suites a shard runs, balancing by stored durations, the
durations file for pytest-split, and a gathered run rebuilt from the shards' statements."""

from __future__ import annotations

import json

import pytest

from immu_action.core.attestation import (
    EXTENSION,
    Shard,
    StoredResult,
    run_from,
)
from immu_action.core.results import SuiteStatus
from immu_action.core.sharding import (
    Durations,
    assign_whole,
    durations_file,
    durations_from,
    parse_shard,
    pytest_nodeid,
    shard_suites,
)
from immu_action.errors import BadInput


def test_parse_shard() -> None:
    assert parse_shard("", "") is None and parse_shard(None, None) is None
    assert parse_shard("2", "3") == Shard(index=2, total=3)
    for bad in (("4", "3"), ("0", "3"), ("x", "3"), ("1", ""), ("", "2")):
        with pytest.raises(BadInput, match="shard"):
            parse_shard(*bad)


def test_whole_suites_spread_longest_first_else_round_robin() -> None:
    assert assign_whole(["a", "b", "c", "d"], 2, Durations()) == {
        "a": 1, "b": 2, "c": 1, "d": 2}
    timed = Durations(suites={"a": 1.0, "b": 10.0, "c": 2.0, "d": 8.0})
    # Longest first onto the least loaded: b (10) | d (8), c (2) | a, at 10 all, on the first.
    assert assign_whole(["a", "b", "c", "d"], 2, timed) == {"b": 1, "d": 2, "c": 2, "a": 1}


def test_split_suites_run_on_every_shard_whole_ones_on_theirs() -> None:
    suites = {"unit": "split", "e2e": "whole", "lint": "whole"}
    one = shard_suites(suites, Shard(index=1, total=2), Durations())
    two = shard_suites(suites, Shard(index=2, total=2), Durations())
    assert one == ["unit", "e2e"] and two == ["unit", "lint"]


@pytest.mark.parametrize(("name", "nodeid"), [
    ("tests.unit.test_store.test_add", "tests/unit/test_store.py::test_add"),
    ("tests.unit.test_web.TestApi.test_get", "tests/unit/test_web.py::TestApi::test_get"),
    ("plain", "plain"),
])
def test_pytest_nodeid(name: str, nodeid: str) -> None:
    assert pytest_nodeid(name) == nodeid


def statement(shard: int, suites: list[dict]) -> StoredResult:
    doc = {"predicate": {"result": "PASSED", EXTENSION: {
        "run": "7.1", "shard": {"index": shard, "total": 2}, "imageId": "sha256:i",
        "testedIsShipped": True, "suites": suites}}}
    return StoredResult(artifact=f"a{shard}", result="PASSED", run="7.1",
                        shard=Shard(index=shard, total=2), time="t", totals={}, url=None,
                        commit=None, statement=doc)


def suite(name: str, status: str, tests: int, failed: int, seconds: float) -> dict:
    failures = [{"suite": name, "classname": "c", "name": f"t{i}", "kind": "failure",
                 "message": "boom", "details": "", "file": "x.py", "line": 3}
                for i in range(failed)]
    return {"name": name, "status": status, "exitCode": 1 if failed else 0,
            "durationSeconds": seconds, "failures": failures,
            "totals": {"tests": tests, "passed": tests - failed, "failed": failed,
                       "errors": 0, "skipped": 0, "duration_s": seconds},
            "tests": [{"name": f"c.t{i}", "status": "passed", "durationSeconds": 0.5}
                      for i in range(tests)]}


def test_a_gathered_run_is_each_suite_once_over_its_shards() -> None:
    shards = [statement(1, [suite("unit", "passed", 5, 0, 3.0)]),
              statement(2, [suite("unit", "failed", 4, 1, 4.0), suite("e2e", "passed", 2, 0, 9.0)])]
    run = run_from(shards, repository="r/app", digest="sha256:d")
    unit, e2e = run.suites
    assert (unit.name, unit.status, unit.results.totals.tests) == ("unit", SuiteStatus.FAILED, 9)
    assert unit.duration_s == 4.0 and [f.file for f in unit.results.failures] == ["x.py"]
    assert e2e.status is SuiteStatus.PASSED and not run.ok
    assert run.tested_is_shipped is True and run.image_id == "sha256:i"
    durations = durations_from([s.statement for s in shards], source="x")
    assert durations.suites == {"unit": 7.0, "e2e": 9.0}
    data = json.loads(durations_file(durations, "unit") or b"{}")
    assert data["c.t0"] == 0.5
    assert durations_file(durations, "nothing") is None
