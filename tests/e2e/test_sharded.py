"""End to end: ``examples/workflows/sharded.yml`` under ``act``: one job builds and pushes, three
matrix jobs test that digest (each its shard), the last gathers their stored results from the
registry, reports once and promotes.

The events run in order on one repository, registry and GitHub emulator: green (the first run:
an even split), a red shard (nothing promoted), a missing shard (nothing promoted, reported as
missing), then a re-run of the missing shard's job as attempt 2 of that run (its result joins
the others and the digest is promoted; the split is balanced by the first run's durations).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from immu_action.core.attestation import EXTENSION
from tests.e2e.support_workflows import REPOSITORY, SHA256, Event, World, open_world
from tests.support.act import ActRun, push_event

pytestmark = pytest.mark.docker
JOBS = ("build", "test", "report")
SHARDS = 3


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory,
          docker_client: docker.DockerClient) -> Iterator[World]:
    yield from open_world(tmp_path_factory, docker_client, "e2e-sharded")


def _push(world: World, sha: str) -> dict[str, Any]:
    world.emulator.state.add_branch("main", *world.history, protected=True)
    return push_event(repository=REPOSITORY, ref="refs/heads/main", sha=sha)


def _sharded(world: World, name: str, sha: str, **kw: Any) -> Event:
    return world.act(name, event="push", workflow="sharded.yml", payload=_push(world, sha),
                     sha=sha, **kw)


def _shard_results(run: ActRun) -> dict[int, str]:
    """The result of each matrix job of ``test``, by shard: its immu step's result (act
    gives all of a job's matrix runs one job result, which a failing shard turns red)."""
    found: dict[int, str] = {}
    for r in run.records:
        if r.get("jobID") == "test" and r.get("stepID") == ["immu"] and "stepResult" in r \
                and r.get("stage", "Main") == "Main":
            found[int((r.get("matrix") or {}).get("shard", 0))] = str(r["stepResult"])
    return found


def _statements(world: World, digest: str, run_id: str) -> list[dict[str, Any]]:
    """This run's stored statements for ``digest``, by shard order."""
    mine = [s for s in world.statements(digest)
            if s["predicate"][EXTENSION]["run"].startswith(f"{run_id}.")]
    return sorted(mine, key=lambda s: s["predicate"][EXTENSION]["shard"]["index"])


def _our_check_runs(world: World, sha: str) -> list[dict[str, Any]]:
    return [r for i, r in world.emulator.state.check_runs.items()
            if r["head_sha"] == sha and i not in world.emulator.state.jobs]


def test_green_three_shards_one_report_one_promotion(world: World) -> None:
    sha = world.history[-1]
    ev = _sharded(world, "green", sha)
    run = ev.run
    assert [run.job_result(j) for j in JOBS] == ["success"] * 3, run.tail(120)
    assert _shard_results(run) == {1: "success", 2: "success", 3: "success"}, run.tail(80)
    image = run.outputs("immu", "build")["image"]
    digest = image.rsplit("@", 1)[1]
    assert SHA256.fullmatch(digest) and image == f"{world.image}@{digest}"
    out = run.outputs("immu", "report")
    assert out["digest"] == digest and out["promoted-tags"].split() == ["latest"], out
    assert world.tags() == {"latest": digest}
    # Every test ran exactly once over the three shards, and each shard ran some.
    stored = _statements(world, digest, ev.run_id)
    assert [s["predicate"][EXTENSION]["shard"] for s in stored] == [
        {"index": i, "total": SHARDS} for i in (1, 2, 3)]
    names = [t for s in stored for t in s["predicate"]["passedTests"]]
    assert len(names) == len(set(names)) == int(out["tests"]) >= 10, names
    assert all(s["predicate"]["passedTests"] for s in stored)
    # One report: one check run, one overall status, a summary with both suites.
    (check,) = _our_check_runs(world, sha)
    assert check["conclusion"] == "success" and digest in check["output"]["summary"]
    statuses = world.emulator.state.statuses_for(sha)
    assert statuses["immu"] == "success" and statuses["immu/unit"] == "success", statuses
    assert "## immu: tests passed" in run.summary("report")
    assert ev.leftovers == {} and world.emulator.violations == []
    world.digests["green"] = digest


def test_a_red_shard_fails_the_run_and_promotes_nothing(world: World) -> None:
    red = "def test_deliberately_red():\n    assert 1 + 1 == 3, 'a red shard'\n"
    sha = world.commit({"tests/unit/test_red.py": red}, "a failing test")
    world.history.append(sha)
    before = world.tags()
    ev = _sharded(world, "red-shard", sha)
    run = ev.run
    shards = _shard_results(run)
    assert sorted(shards.values()) == ["failure", "success", "success"], (shards, run.tail())
    assert run.job_result("report") == "failure", run.tail(80)
    out = run.outputs("immu", "report")
    assert out["conclusion"] == "failure" and out["promoted-tags"] == "", out
    assert int(out["failed"]) == 1, out
    assert world.tags() == before, "nothing promoted"
    (check,) = _our_check_runs(world, sha)
    assert check["conclusion"] == "failure", check
    notes = world.emulator.state.annotations[check["id"]]
    assert any("test_deliberately_red" in a.get("title", "") + a["message"] for a in notes)
    assert world.emulator.state.statuses_for(sha)["immu"] == "failure"
    red_shard = next(i for i, r in shards.items() if r == "failure")
    stored = _statements(world, run.outputs("immu", "build")["image"].rsplit("@", 1)[1],
                         ev.run_id)
    assert stored[red_shard - 1]["predicate"]["result"] == "FAILED"
    assert ev.leftovers == {} and world.emulator.violations == []


def test_a_missing_shard_promotes_nothing_then_its_re_run_completes_the_run(
        world: World) -> None:
    sha = world.commit({"tests/unit/test_red.py": "def test_green_again():\n    pass\n"},
                       "fix the failing test")
    world.history.append(sha)
    before = world.tags()
    run_id = "9500001"
    # Attempt 1: shard 2's job never stores anything (act runs shards 1 and 3 only).
    ev = _sharded(world, "missing-shard", sha, matrix={"shard": ["1", "3"]},
                  env={"GITHUB_RUN_ID": run_id, "GITHUB_RUN_ATTEMPT": "1"})
    run = ev.run
    assert _shard_results(run) == {1: "success", 3: "success"}, run.tail(80)
    assert run.job_result("report") == "failure", run.tail(80)
    out = run.outputs("immu", "report")
    assert out["promoted-tags"] == "" and "missing" in out["error"], out
    assert world.tags() == before
    digest = run.outputs("immu", "build")["image"].rsplit("@", 1)[1]
    # Attempt 2 of the same run re-runs shard 2's job: its result joins those of attempt 1.
    again = _sharded(world, "rerun-shard", sha, matrix={"shard": ["2"]},
                     env={"GITHUB_RUN_ID": run_id, "GITHUB_RUN_ATTEMPT": "2"})
    rerun = again.run
    assert _shard_results(rerun) == {2: "success"}, rerun.tail(80)
    assert rerun.job_result("report") == "success", rerun.tail(80)
    assert rerun.outputs("immu", "build")["image"].endswith(digest), "the same digest"
    out = rerun.outputs("immu", "report")
    assert out["promoted-tags"].split() == ["latest"] and world.tags()["latest"] == digest
    runs = [s["predicate"][EXTENSION]["run"] for s in _statements(world, digest, run_id)]
    assert sorted(runs) == [f"{run_id}.1", f"{run_id}.1", f"{run_id}.2"], runs
    # The shards were balanced by the durations stored with the last promoted digest.
    assert re.search(r"shard 2/3: suites .*balanced by the durations stored with "
                     + re.escape(f"{world.image}:latest@{world.digests['green']}"),
                     rerun.log()), rerun.tail(120)
    assert again.leftovers == {} and world.emulator.violations == []
