"""End to end: the example workflows themselves run under ``act`` on the example service.

One temporary git repository (``acme/shop``) holds ``examples/python-service`` plus the four
files of ``examples/workflows`` under ``.github/workflows``. Exactly two things are rewritten in
the copies, and ``test_only_the_registry_and_base_images_differ`` proves nothing else is:
- ``immu.yml``: ``image.repository`` -> a fresh repository on the loopback test registry, and the
  two public base images -> the offline ones of ``immu.offline.yml`` (``immu-base/python:3``,
  ``immu-base/postgres:15``, built by ``scripts/base-images.sh``), so the workflows keep their
  default ``spec: immu.yml`` untouched;
- ``rollback.yml``: its ``IMAGE:`` (the user's ``image.repository``) -> that same repository.
The registry credentials reach the workflows the way the examples expect them: the variable
``REGISTRY_USERNAME`` and the secret ``REGISTRY_PASSWORD``.

The events run in file order on the same repository, registry and GitHub emulator (each test
adds the commit it needs), so later events see what earlier ones promoted: pull request, push to
protected main, push to main while it is unprotected, push of a commit main has already moved
past, tag ``v1.2.3`` on a newer commit (and its re-run), rollback of ``latest`` to main's digest
by ``workflow_dispatch`` (then ``immu trace``), and a red run. Each test asserts the job's
outcome, the action's outputs, the registry's tags and digests, the GitHub calls recorded by the
emulator (no OpenAPI violation), the step summary and that no container or network labelled
``immu.run`` by this run is left.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from immu_action.core.attestation import TEST_RESULT
from tests.e2e.support_workflows import (
    EXAMPLE,
    EXAMPLE_REPOSITORY,
    PUBLIC_TO_OFFLINE,
    REPOSITORY,
    ROLLBACK_IMAGE,
    SHA256,
    WORKFLOWS,
    Event,
    World,
    open_world,
)
from tests.support.act import GIT, push_event
from tests.support.engines import start_engine
from tests.support.registry import PASSWORD, USER

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory,
          docker_client: docker.DockerClient) -> Iterator[World]:
    """The example repository, registry image and emulator shared by every event below."""
    yield from open_world(tmp_path_factory, docker_client, "e2e-workflows")


def _main_push(world: World, sha: str, *, protected: bool) -> dict[str, Any]:
    world.emulator.state.add_branch("main", *world.history, protected=protected)
    assert world.history[-1] == sha
    return push_event(repository=REPOSITORY, ref="refs/heads/main", sha=sha)


def _assert_common(world: World, ev: Event, sha: str) -> None:
    """What every event must leave: no OpenAPI violation, no leftover, statuses on ``sha``."""
    assert world.emulator.violations == [], world.emulator.violations
    assert ev.created, "the watch attributed no container to this run: it would prove nothing"
    assert ev.leftovers == {}, ev.leftovers
    statuses = world.emulator.state.statuses_for(sha)
    assert "immu" in statuses and {"immu/unit", "immu/integration"} <= set(statuses), statuses


def _check_run_list(world: World, sha: str) -> list[dict[str, Any]]:
    """Our check runs on ``sha`` (the jobs' own check runs left out)."""
    return [r for i, r in world.emulator.state.check_runs.items()
            if r["head_sha"] == sha and i not in world.emulator.state.jobs]


def _check_run(world: World, sha: str) -> dict[str, Any]:
    runs = _check_run_list(world, sha)
    assert len(runs) == 1, runs
    return runs[0]


def _assert_tested_is_shipped(out: dict[str, str]) -> None:
    """The run's own record: the digest it tested is the digest it output (and pushed)."""
    result = json.loads(out["results-json"])
    assert result["digest"] == out["digest"] and result["tested_is_shipped"] is True, result
    assert result["image"] == out["image"] and result["image_id"] == out["image-id"], result


def _assert_counts(out: dict[str, str], *, failed: int = 0) -> None:
    tests, passed = int(out["tests"]), int(out["passed"])
    assert tests >= 10 and int(out["failed"]) == failed and out["errors"] == "0", out
    assert passed == tests - failed - int(out["skipped"]), out


def test_only_the_registry_and_base_images_differ(world: World) -> None:
    """The copies differ from the examples only in the registry address and base images."""
    for wf in WORKFLOWS.glob("*.yml"):
        copied = (world.repo / ".github" / "workflows" / wf.name).read_text()
        undone = copied.replace(world.image, ROLLBACK_IMAGE) if wf.name == "rollback.yml" \
            else copied
        assert undone == wf.read_text(), wf.name
    spec = (world.repo / "immu.yml").read_text().replace(world.image, EXAMPLE_REPOSITORY)
    for public, offline in PUBLIC_TO_OFFLINE.items():
        spec = spec.replace(offline, public)
    assert spec == (EXAMPLE / "immu.yml").read_text()
    offline = (EXAMPLE / "immu.offline.yml").read_text()
    assert all(o in offline for o in PUBLIC_TO_OFFLINE.values())


def test_pull_request_builds_tests_reports_pushes_nothing(world: World) -> None:
    sha = world.history[-1]
    world.emulator.state.add_branch("main", sha, protected=True)
    head = {"sha": sha, "ref": "feature", "repo": {"full_name": REPOSITORY}}
    payload = {"action": "synchronize", "number": 7,
               "pull_request": {"number": 7, "head": head,
                                "base": {"sha": sha, "ref": "main",
                                         "repo": {"full_name": REPOSITORY}}},
               "repository": push_event(repository=REPOSITORY, ref="", sha=sha)["repository"]}
    ev = world.act("pull_request", event="pull_request", workflow="pull-request.yml",
                   payload=payload, sha=sha)
    assert ev.run.job_result() == "success", ev.run.tail()
    out = ev.out()
    assert SHA256.fullmatch(out["image-id"]), out
    assert out["digest"] == "" and out["promoted-tags"] == "", out
    assert out["image"] == out["image-id"], out  # not pushed: named by its image ID
    result = json.loads(out["results-json"])
    assert result["digest"] is None and result["tested_is_shipped"] is None, result
    assert out["conclusion"] == "success", out
    _assert_counts(out)
    assert world.tags() == {}, "a pull request pushed to the registry"
    _assert_common(world, ev, sha)
    run = _check_run(world, sha)
    assert run["conclusion"] == "success", run
    (comment,) = world.emulator.state.comments.values()
    assert comment["body"].startswith("<!-- immu-action -->") and "passed" in comment["body"]
    assert world.emulator.state.deployments == {} and world.emulator.state.releases == {}
    assert ev.count("POST", f"/statuses/{sha}$") == 3  # immu/unit, immu/integration, immu
    assert ev.count("POST", "/check-runs$") == 1 and ev.count("POST", "/issues/7/comments$") == 1
    assert ev.count(None, "/(deployments|releases|branches|compare)") == 0, ev.calls
    summary = ev.run.summary()
    assert "## immu: tests passed" in summary and out["image-id"] in summary, summary


def test_push_to_protected_main_promotes_the_tested_digest(world: World) -> None:
    sha = world.history[-1]
    ev = world.act("push-main", event="push", workflow="main.yml",
                   payload=_main_push(world, sha, protected=True), sha=sha)
    assert ev.run.job_result() == "success", ev.run.tail()
    out = ev.out()
    digest = out["digest"]
    assert SHA256.fullmatch(digest), out
    assert out["image"] == f"{world.image}@{digest}", out
    assert out["promoted-tags"].split() == ["latest"], out  # semver templates skip on a branch
    assert out["conclusion"] == "success", out
    _assert_counts(out)
    _assert_tested_is_shipped(out)
    assert world.tags() == {"latest": digest} and world.staged(sha) == {digest}
    assert world.audited() == {"latest"}
    # The results went to the registry with the digest, naming this run (id.attempt).
    assert out["results-attestation"].startswith(f"{world.image}@sha256:"), out
    stored = world.results(digest)
    assert [(v["run"], v["passed"]) for v in stored["runs"]] == [(ev.run_id, True)], stored
    _assert_common(world, ev, sha)
    run = _check_run(world, sha)
    assert run["conclusion"] == "success" and digest in run["output"]["summary"], run
    (deployment,) = world.emulator.state.deployments.values()
    assert deployment["sha"] == sha and deployment["payload"]["digest"] == digest, deployment
    assert [s["state"] for s in world.emulator.state.deployment_statuses[deployment["id"]]] \
        == ["success"]
    summary = ev.run.summary()
    assert "## immu: tests passed" in summary and digest in summary, summary
    assert "unit" in summary and "integration" in summary and "`latest`" in summary, summary
    assert f"promoted {digest} to tags: latest" in ev.run.log()  # the example's last step
    assert PASSWORD not in ev.run.log(), "the registry password leaked into the job log"
    assert ev.count("POST", f"/statuses/{sha}$") == 3
    # The pull request's run reported on this very commit: its check run is updated in place.
    assert ev.count("PATCH", r"/check-runs/\d+$") == 1 and ev.count("POST", "/check-runs$") == 0
    assert ev.count("GET", "/branches/main$") >= 1, "the gate must ask GitHub about main"
    assert ev.count("POST", "/deployments$") == 1
    assert ev.count("POST", r"/deployments/\d+/statuses$") == 1
    assert ev.count(None, "/(releases|comments)") == 0, ev.calls
    world.digests["main"] = digest


def test_push_to_unprotected_main_promotes_nothing(world: World) -> None:
    sha = world.commit({"README.md": "# notes service\n\nSee the docs.\n"}, "docs")
    world.history.append(sha)
    before = world.tags()
    ev = world.act("push-unprotected", event="push", workflow="main.yml",
                   payload=_main_push(world, sha, protected=False), sha=sha)
    assert ev.run.job_result() == "success", ev.run.tail()
    out = ev.out()
    assert SHA256.fullmatch(out["digest"]) and out["promoted-tags"] == "", out
    _assert_tested_is_shipped(out)
    assert out["conclusion"] == "success", out
    _assert_counts(out)
    after = world.tags()
    assert after == before and world.staged(sha) == {out["digest"]}, "only staging is new"
    _assert_common(world, ev, sha)
    run = _check_run(world, sha)
    assert "not protected" in run["output"]["summary"], run["output"]["summary"]
    assert len(world.emulator.state.deployments) == 1, "no new deployment"
    assert ev.count("GET", "/branches/main$") >= 1, "the gate must ask GitHub about main"
    assert ev.count(None, "/(deployments|releases|comments)") == 0, ev.calls
    assert "not protected" in ev.run.summary()


def test_stale_push_to_main_promotes_nothing(world: World) -> None:
    """Main is protected but has moved on past the run's commit: a stale run moves no tag."""
    sha = world.commit({"README.md": "# notes service\n\nSee the docs, again.\n"}, "docs 2")
    world.history.append(sha)
    before = world.tags()
    newer = "f" * 40  # someone else's push, after this run's commit
    world.emulator.state.add_branch("main", *world.history, newer, protected=True)
    ev = world.act("push-stale", event="push", workflow="main.yml",
                   payload=push_event(repository=REPOSITORY, ref="refs/heads/main", sha=sha),
                   sha=sha)
    world.emulator.state.add_branch("main", *world.history, protected=True)  # as it was
    assert ev.run.job_result() == "success", ev.run.tail()
    out = ev.out()
    assert out["promoted-tags"] == "" and out["conclusion"] == "success", out
    _assert_tested_is_shipped(out)
    assert world.tags() == before and world.staged(sha) == {out["digest"]}, "only staging"
    _assert_common(world, ev, sha)
    why = f"commit {sha[:12]} is no longer the head of 'main'"
    assert why in _check_run(world, sha)["output"]["summary"]
    assert why in ev.run.summary()
    assert ev.count(None, "/(deployments|releases|comments)") == 0, ev.calls


def _release(world: World, version: str, *, retag: bool = False) -> tuple[Event, str]:
    """Commit on protected main, tag it ``v<version>`` and run the release workflow."""
    init = (world.repo / "app" / "__init__.py").read_text()
    sha = world.commit({"app/__init__.py": init + f"# release {version}\n"}, f"release {version}")
    world.history.append(sha)
    world.emulator.state.add_branch("main", *world.history, protected=True)
    subprocess.run([*GIT, "-C", str(world.repo), "tag", *(["-f"] if retag else []),
                    f"v{version}"], check=True, capture_output=True)
    payload = push_event(repository=REPOSITORY, ref=f"refs/tags/v{version}", sha=sha)
    return world.act(f"v{version}" + ("-retag" if retag else ""), event="push",
                     workflow="release.yml", payload=payload, sha=sha), sha


def _predicate_sha256(world: World, out: dict[str, str]) -> str:
    """sha256 of the predicate file the run wrote (act removed its workspace since): the
    predicate of the statement stored in the registry, written the way immu writes it."""
    assert out["results-predicate-path"].endswith("/attestation/predicate.json"), out
    (stored,) = world.statements(out["digest"])
    predicate = json.dumps(stored["predicate"], indent=1, sort_keys=True) + "\n"
    return hashlib.sha256(predicate.encode()).hexdigest()


def _trace(world: World, tag: str) -> dict[str, Any]:
    env = {"PATH": "/usr/bin:/bin", "IMMU_REGISTRY_USERNAME": USER,
           "IMMU_REGISTRY_PASSWORD": PASSWORD, "HOME": str(world.work)}
    done = subprocess.run([sys.executable, "-m", "immu_action", "trace", f"{world.image}:{tag}",
                           "--json"], capture_output=True, text=True, timeout=60, check=False,
                          env=env)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


# After each release of the history, where every tag must point (by the release that put it
# there): exact version tags never move; floating ones follow the highest release of their line.
HISTORY = [
    ("1.2.0", {"1.2.0": "1.2.0", "1.2": "1.2.0", "1": "1.2.0", "latest": "1.2.0"}),
    ("1.2.1", {"1.2.1": "1.2.1", "1.2": "1.2.1", "1": "1.2.1", "latest": "1.2.1"}),
    ("1.3.0", {"1.3.0": "1.3.0", "1.3": "1.3.0", "1": "1.3.0", "latest": "1.3.0"}),
    ("2.0.0", {"2.0.0": "2.0.0", "2.0": "2.0.0", "2": "2.0.0", "latest": "2.0.0"}),
    # a patch of an older line: 1.2 moves; 1 stays on 1.3.0 and latest on 2.0.0
    ("1.2.2", {"1.2.2": "1.2.2", "1.2": "1.2.2"}),
]


def test_a_release_history_moves_floating_tags_forward_and_never_an_exact_tag(
        world: World) -> None:
    """v1.2.0, v1.2.1, v1.3.0, v2.0.0, v1.2.2 with the example spec as shipped."""
    where: dict[str, str] = {}  # tag -> version it must point at
    for version, moved in HISTORY:
        ev, sha = _release(world, version)
        assert ev.run.job_result() == "success", ev.run.tail()
        out = ev.out()
        digest = out["digest"]
        assert SHA256.fullmatch(digest) and digest not in world.digests.values(), out
        world.digests[version] = digest
        assert out["promoted-tags"].split() == list(moved), out
        _assert_tested_is_shipped(out)
        _assert_counts(out)
        _assert_common(world, ev, sha)
        where.update(moved)
        tags = world.tags()
        expected = {tag: world.digests[v] for tag, v in where.items()}
        assert {t: d for t, d in tags.items() if t in expected} == expected, (version, tags)
        assert world.staged(sha) == {digest}
        (release,) = [r for r in world.emulator.state.releases.values()
                      if r["tag_name"] == f"v{version}"]
        assert "<!-- immu:begin -->" in release["body"] and digest in release["body"], release
        assert ev.count("POST", "/deployments$") == 1
        # The example hands the stored results' predicate to actions/attest (a stand-in here).
        signed = re.findall(r"attest stand-in: (.*)", ev.run.log())
        assert signed == [f"name={world.image} digest={digest} type={TEST_RESULT} "
                          f"result=PASSED push=true predicate-sha256="
                          f"{_predicate_sha256(world, out)}"], signed
    summary = ev.run.summary()  # v1.2.2's: it says which floating tags stayed, and why
    assert "`1` stays on 1.3.0" in summary and "`latest` stays on 2.0.0" in summary, summary
    assert _trace(world, "1")["digest"] == world.digests["1.3.0"]
    history = [(r["action"], r["digest"]) for r in _trace(world, "1.2")["history"]]
    assert history == [("promote", world.digests[v]) for v in ("1.2.2", "1.2.1", "1.2.0")]
    latest = _trace(world, "latest")
    assert latest["digest"] == world.digests["2.0.0"] and latest["in_sync"] is True
    assert [r["digest"] for r in latest["history"]][:4] == [
        world.digests[v] for v in ("2.0.0", "1.3.0", "1.2.1", "1.2.0")]
    world.digests["tag"] = world.digests["2.0.0"]


def test_a_release_re_run_is_idempotent(world: World) -> None:
    """v2.0.0 again (same commit): same digest, same tags, one release section, assets
    replaced only where their bytes changed."""
    before = world.tags()
    sha = subprocess.run([*GIT, "-C", str(world.repo), "rev-list", "-n1", "v2.0.0"],
                         capture_output=True, text=True, check=True).stdout.strip()
    payload = push_event(repository=REPOSITORY, ref="refs/tags/v2.0.0", sha=sha)
    again = world.act("v2.0.0-rerun", event="push", workflow="release.yml", payload=payload,
                      sha=sha)
    assert again.run.job_result() == "success", again.run.tail()
    assert again.out()["digest"] == world.promoted("2.0.0"), "a re-run must rebuild the image"
    assert world.tags() == before
    (release,) = [r for r in world.emulator.state.releases.values() if r["tag_name"] == "v2.0.0"]
    assert release["body"].count("<!-- immu:begin -->") == 1, release["body"]
    names = sorted(a["name"] for i, a in world.emulator.state.assets.items()
                   if world.emulator.state.asset_release[i] == release["id"])
    assert names == ["junit.xml", "promotion.json", "test-results.json"], names
    uploads = [p for p in again.paths("POST") if "/releases/" in p and p.endswith("/assets")]
    assert len(again.paths("DELETE")) == len(uploads) <= 3, again.calls
    assert len(_check_run_list(world, sha)) == 1
    _assert_common(world, again, sha)


def test_a_re_tagged_release_with_another_digest_is_refused_and_reported(world: World) -> None:
    """v1.2.0 moved to a new commit builds another digest: 1.2.0 is exact, so the promotion is
    refused before any write (exit 3), and GitHub and the runner files say so."""
    before = world.tags()
    releases = {r["tag_name"]: r["body"] for r in world.emulator.state.releases.values()}
    ev, sha = _release(world, "1.2.0", retag=True)
    assert ev.run.job_result() == "failure", ev.run.tail()
    assert "exit status 3" in ev.run.log() or "exitcode '3'" in ev.run.log(), ev.run.tail()
    out = ev.out()
    assert SHA256.fullmatch(out["digest"]) and out["digest"] != world.promoted("1.2.0"), out
    assert out["promoted-tags"] == "" and out["conclusion"] == "failure", out
    assert "immutable" in out["error"] and "1.2.0" in out["error"], out
    _assert_counts(out)  # the tests themselves passed
    assert world.tags() == before, "a refused promotion wrote a tag"
    _assert_common(world, ev, sha)
    assert world.emulator.state.statuses_for(sha)["immu"] == "failure"
    run = _check_run(world, sha)
    assert run["conclusion"] == "failure" and "promotion refused" in run["output"]["title"], run
    assert "immutable" in run["output"]["summary"], run["output"]["summary"]
    assert "## immu: promotion refused" in ev.run.summary()
    after = {r["tag_name"]: r["body"] for r in world.emulator.state.releases.values()}
    assert after == releases, "a refused re-run must leave the published release as it was"
    assert ev.count("POST", "/deployments$") == 0


def test_rollback_by_workflow_dispatch_repoints_latest(world: World) -> None:
    earlier, release = world.promoted("main"), world.promoted("tag")
    assert world.tags()["latest"] == release
    payload = {"inputs": {"tag": "latest", "to": earlier},
               **push_event(repository=REPOSITORY, ref="refs/heads/main",
                            sha=world.history[-1])}
    ev = world.act("rollback", event="workflow_dispatch", workflow="rollback.yml",
                   payload=payload, sha=world.history[-1])
    assert ev.run.job_result() == "success", ev.run.tail()
    tags = world.tags()
    assert tags["latest"] == earlier and tags["2.0.0"] == release, tags
    assert ev.leftovers == {}, ev.leftovers
    env = {"PATH": "/usr/bin:/bin", "IMMU_REGISTRY_USERNAME": USER,
           "IMMU_REGISTRY_PASSWORD": PASSWORD, "HOME": str(world.work)}
    trace = subprocess.run(
        [sys.executable, "-m", "immu_action", "trace",
         f"{world.image}:latest", "--json"],
        capture_output=True, text=True, timeout=60, check=False, env=env)
    assert trace.returncode == 0, trace.stderr
    data = json.loads(trace.stdout)
    assert data["digest"] == earlier, data
    releases = [world.promoted(v) for v in ("2.0.0", "1.3.0", "1.2.1", "1.2.0")]
    assert data["in_sync"] is True and data["earlier_digests"] == releases, data
    history = [(r["action"], r["digest"], r["previous_digest"]) for r in data["history"]]
    # Newest first: the rollback, the releases that moved latest, main's promotion.
    assert history[0] == ("rollback", earlier, release), history
    assert ("promote", release, world.promoted("1.3.0")) in history, history
    assert ("promote", world.promoted("1.2.0"), earlier) in history, history
    assert history[-1] == ("promote", earlier, None), history
    assert data["history"][-1]["commit"] == world.history[0], data["history"][-1]
    # The rollback is recorded with the dispatching workflow's commit and run.
    rollback = data["history"][0]
    assert rollback["commit"] == world.history[-1], rollback
    assert "/acme/shop/actions/runs/" in (rollback["run_url"] or ""), rollback
    human = subprocess.run(
        [sys.executable, "-m", "immu_action", "trace", f"{world.image}:latest"],
        capture_output=True, text=True, timeout=60, check=False, env=env)
    assert human.returncode == 0, human.stderr
    lines = [line.split() for line in human.stderr.splitlines() if "  commit " in line
             and line.strip().split()[1] in ("promote", "rollback")]
    assert [(w[1], w[2]) for w in lines] == [(a, d) for a, d, _ in history], human.stderr


def test_push_to_main_on_the_containerd_store_ships_the_tested_digest(world: World) -> None:
    """The main workflow on Docker 26 with buildx and the containerd image store (fresh
    Docker 29 installs): the image ID is the digest, and the proof holds all the same."""
    engine = start_engine("docker26-containerd", images=("python", "postgres"))
    sha = world.commit({"README.md": "# notes service\n\nOn containerd.\n"}, "containerd")
    world.history.append(sha)
    before = world.tags()
    ev = world.act("push-containerd", event="push", workflow="main.yml",
                   payload=_main_push(world, sha, protected=True), sha=sha, env=engine)
    assert ev.run.job_result() == "success", ev.run.tail()
    out = ev.out()
    digest = out["digest"]
    _assert_tested_is_shipped(out)
    _assert_counts(out)
    result = json.loads(out["results-json"])
    assert out["image-id"] == digest and result["digest_kind"] in ("index", "manifest"), result
    assert world.tags() == {**before, "latest": digest} and world.staged(sha) == {digest}
    assert "#1 [internal] load build definition from Dockerfile" in ev.run.log()  # BuildKit
    world.digests["main-containerd"] = digest


def test_red_run_fails_annotates_and_promotes_nothing(world: World) -> None:
    name = "tests/unit/test_red.py"
    red = "def test_deliberately_red():\n    assert 1 + 1 == 3, 'the red run'\n"
    sha = world.commit({name: red}, "a failing test")
    world.history.append(sha)
    before = world.tags()
    ev = world.act("red", event="push", workflow="main.yml",
                   payload=_main_push(world, sha, protected=True), sha=sha)
    assert ev.run.job_result() == "failure", ev.run.tail()
    out = ev.out()
    assert out["conclusion"] == "failure" and out["promoted-tags"] == "", out
    _assert_counts(out, failed=1)
    _assert_tested_is_shipped(out)
    assert world.tags() == before and world.staged(sha) == {out["digest"]}, "nothing promoted"
    _assert_common(world, ev, sha)
    assert world.emulator.state.statuses_for(sha)["immu"] == "failure"
    assert ev.count(None, "/(deployments|releases|comments)") == 0, ev.calls
    run = _check_run(world, sha)
    assert run["conclusion"] == "failure", run
    notes = world.emulator.state.annotations[run["id"]]
    assert any(a["path"].endswith(name) and "test_deliberately_red" in
               (a.get("title", "") + a["message"]) for a in notes), notes
    summary = ev.run.summary()
    assert "## immu: tests failed" in summary and "test_deliberately_red" in summary, summary
    assert world.emulator.state.statuses_for(sha)["immu/unit"] == "failure"
    assert world.emulator.state.statuses_for(sha)["immu/integration"] == "success"
