"""Service start-up on a real engine: a slow service holds up only its own suite, a suite's
test container is made while its services start, the early start is bounded by the
parallel slots, and the spec's health test is run at growing gaps, not every 0.25 s."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.test_pipeline_docker import assert_clean, run_cli, write_project

pytestmark = pytest.mark.docker

# A service that turns healthy READY seconds after it starts (Docker checks every 200 ms).
SERVICE = """\
    {name}:
      image: {busybox}
      command: [sh, -c, "sleep {ready}; touch /tmp/ready; exec sleep 300"]
      healthcheck: {{test: [CMD, test, -f, /tmp/ready], interval: {interval}, retries: 1000}}
"""
SUITE = """\
    {name}:
      command: [sh, -c, "cp /fixtures/it.xml /immu/results/"]
      services: [{service}]
"""


def spec_text(busybox: str, services: dict[str, float], suites: dict[str, str],
              interval: str = "200ms") -> str:
    """A spec with ``services`` (name: seconds until healthy) and ``suites`` (name: its
    service)."""
    return ("version: 1\nimage: {repository: local/immu-services}\nservices:\n"
            + "".join(SERVICE.format(name=n, busybox=busybox, ready=r, interval=interval)
                      for n, r in services.items())
            + "tests:\n" + "".join(SUITE.format(name=n, service=s) for n, s in suites.items()))


def mine(client: docker.DockerClient) -> list[Any]:
    """The containers runs of this process made (IMMU_KEEP=1 kept them)."""
    return [c for c in client.containers.list(all=True, filters={"label": "immu.pid"})
            if c.attrs["Config"]["Labels"].get("immu.pid") == str(os.getpid())]


@pytest.fixture()
def kept(docker_client: docker.DockerClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """IMMU_KEEP=1 for the test (to read the containers' clocks), all removed afterwards."""
    monkeypatch.setenv("IMMU_KEEP", "1")
    try:
        yield
    finally:
        for c in mine(docker_client):
            c.remove(force=True)
        for n in docker_client.networks.list(filters={"label": "immu.pid"}):
            if n.attrs["Labels"].get("immu.pid") == str(os.getpid()):
                n.remove()
        assert_clean(docker_client)


def containers(client: docker.DockerClient) -> dict[str, dict[str, Any]]:
    """``{"<suite>-<service>" or "<suite>-test": inspect data}`` of this process's runs."""
    out = {}
    for c in mine(client):
        short = c.name.split("-", 2)[2]  # immu-<run id>-<suite>-<what>
        out[short] = c.attrs
    return out


def at(text: str) -> float:
    """Docker's RFC 3339 time (nanoseconds) as a POSIX timestamp."""
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float(f"0.{frac or 0}")


def test_a_slow_service_holds_up_only_its_own_suite(
        tmp_path: Path, busybox_image: str, docker_client: docker.DockerClient,
        capsys: pytest.CaptureFixture[str]) -> None:
    # The slow one comes first: the workers take it first, and its services start first.
    spec = write_project(tmp_path, busybox_image, spec_text(
        busybox_image, {"slowdb": 6, "quickdb": 0}, {"slow": "slowdb", "quick": "quickdb"}))
    code, result, err = run_cli(["run", "-f", str(spec), "--no-push", "--parallel", "2"],
                                capsys)
    assert code == 0, err
    suites = result["timings"]["suites"]
    assert suites["slow"]["services_ready_s"] >= 5.5, suites
    # the quick suite ran and ended while the slow one's database was still starting
    assert suites["quick"]["ended_s"] < suites["slow"]["services_ready_s"] - 2, suites
    assert_clean(docker_client)


def test_the_test_container_is_made_while_its_services_start(
        tmp_path: Path, busybox_image: str, docker_client: docker.DockerClient,
        capsys: pytest.CaptureFixture[str], kept: None) -> None:
    spec = write_project(tmp_path, busybox_image, spec_text(
        busybox_image, {"db": 4}, {"uses": "db"}))
    code, _, err = run_cli(["run", "-f", str(spec), "--no-push"], capsys)
    assert code == 0, err
    made = containers(docker_client)
    db_started = at(made["uses-db"]["State"]["StartedAt"])
    test_created = at(made["uses-test"]["Created"])
    test_started = at(made["uses-test"]["State"]["StartedAt"])
    assert test_created < db_started + 2, "created while the service was still starting"
    assert test_started > db_started + 3.5, "started only once the service was healthy"


def test_services_start_early_for_two_suites_per_slot_and_later_ones_when_taken(
        tmp_path: Path, busybox_image: str, docker_client: docker.DockerClient,
        capsys: pytest.CaptureFixture[str], kept: None) -> None:
    spec = write_project(tmp_path, busybox_image, spec_text(
        busybox_image, {"db": 1}, {"first": "db", "second": "db", "third": "db"}))
    code, result, err = run_cli(["run", "-f", str(spec), "--no-push", "--parallel", "1"],
                                capsys)
    assert code == 0, err
    made = containers(docker_client)
    first_ended = at(made["first-test"]["State"]["FinishedAt"])
    second_ended = at(made["second-test"]["State"]["FinishedAt"])
    # one slot: the first two suites' databases start at once, early...
    assert at(made["second-db"]["State"]["StartedAt"]) < first_ended
    # ...the third's only when the slot takes that suite, after the second ended
    assert at(made["third-db"]["State"]["StartedAt"]) > second_ended
    assert [s["status"] for s in result["suites"]] == ["passed"] * 3


def test_the_specs_health_test_runs_at_growing_gaps(
        tmp_path: Path, busybox_image: str, docker_client: docker.DockerClient,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Docker's first check would come after 60 s; immu's own runs of the test (execs, each
    ~50 ms of engine CPU) start at 0.25 s and back off to one a second: about 7 in the 4.5 s
    this service takes, where probing every 0.25 s would make 18."""
    spec = write_project(tmp_path, busybox_image, spec_text(
        busybox_image, {"db": 4.5}, {"uses": "db"}, interval="60s"))
    since = time.time()
    code, result, err = run_cli(["run", "-f", str(spec), "--no-push"], capsys)
    assert code == 0, err
    events = list(docker_client.events(since=int(since), until=int(time.time()) + 1,
                                       decode=True, filters={"event": ["exec_create", "start"]}))
    db = [e for e in events
          if e.get("Actor", {}).get("Attributes", {}).get("name", "").endswith("-uses-db")]
    probes = [e["timeNano"] / 1e9 for e in db if e["Action"].startswith("exec_create")]
    # The gaps, not the count (a stalled engine makes the service take longer, and so more
    # probes), and relative to each other (each also holds an exec, slower on a loaded
    # runner): sleeps of 0.375 s, 0.56 s, 0.84 s, then 1 s. Every 0.25 s would not grow;
    # growing without a cap, the 4.5 s start-up ends in a 1.9 s gap.
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(probes)]
    assert len(probes) >= 4, probes
    assert gaps[-1] - gaps[0] >= 0.4, gaps
    assert max(gaps) - min(gaps) <= 1.1, gaps
    # The gaps stop growing at 1 s: "ready" is seen within a gap (plus the exec and the
    # hand-over to the suite, up to 1.5 s on a loaded 2-core runner) of the 4.5 s start-up,
    # counted from the service's own start, whatever the build took. Gaps growing without
    # a cap see it at 8-9 s.
    (started,) = [e["timeNano"] / 1e9 for e in db if e["Action"] == "start"]
    ready = since + result["timings"]["suites"]["uses"]["services_ready_s"]
    assert ready - started < 4.5 + 1.0 + 1.5, (ready - started, result["timings"])
    assert_clean(docker_client)
