"""Suites run concurrently: each in its own group when it ends, results in the spec's order, a
timeout stops only its suite, and a cancel in the middle of three leaves nothing behind."""

from __future__ import annotations

import io
import os
import re
import tarfile
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from immu_action.cli import main
from tests.integration.test_cancellation import runner_cancel, start, wait_for
from tests.integration.test_pipeline_docker import assert_clean, run_cli, write_project
from tests.support.docker_env import labelled

pytestmark = pytest.mark.docker

TWO = """\
version: 1
image: {repository: local/immu-parallel}
tests:
  slow:
    command: [sh, -c, "sleep 4; cp /fixtures/it.xml /immu/results/; echo slow-done"]
  fast:
    command: [sh, -c, "cp /fixtures/it.xml /immu/results/; echo fast-done"]
"""


def groups(err: str) -> list[str]:
    return re.findall(r"^::group::Suite (\S+)$", err, re.M)


def assert_well_formed(err: str) -> None:
    """Suites that end together still print one after the other: each group holds exactly
    its own fence (a group opened inside another's fence is ignored by the runner)."""
    markers = re.findall(r"^::(group::Suite \S+|stop-commands::\w+|\w{32}::|endgroup::)$",
                         err, re.M)
    suite_groups = [i for i, m in enumerate(markers) if m.startswith("group::Suite")]
    for i in suite_groups:
        stop, resume, closed = markers[i + 1:i + 4]
        assert stop.startswith("stop-commands::") and resume == stop.split("::")[1] + "::" \
            and closed == "endgroup::", markers[i:i + 4]


def test_suites_run_at_once_and_report_in_the_specs_order(
        tmp_path: Path, busybox_image: str, docker_client: docker.DockerClient,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")  # groups are printed in Actions
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/shop")
    monkeypatch.setenv("GITHUB_EVENT_NAME", "workflow_dispatch")
    monkeypatch.setenv("GITHUB_SHA", "a" * 40)
    spec = write_project(tmp_path, busybox_image, TWO)
    code, result, err = run_cli(["run", "-f", str(spec), "--no-push", "--parallel", "2"],
                                capsys)
    assert code == 0, err
    # The fast suite ended first, so its group came first: it ran while the slow one did.
    assert groups(err) == ["fast", "slow"], err[-3000:]
    assert_well_formed(err)
    assert [s["name"] for s in result["suites"]] == ["slow", "fast"]  # the spec's order
    fast = err.index("::group::Suite fast")
    assert "fast-done" in err[fast:err.index("::endgroup::", fast)]  # its output, in its group
    code, result, err = run_cli(["run", "-f", str(spec), "--no-push", "--parallel", "1"],
                                capsys)
    assert code == 0 and groups(err) == ["slow", "fast"], err[-3000:]  # one after the other
    assert_clean(docker_client)


def test_a_timed_out_suite_does_not_stop_its_siblings(
        tmp_path: Path, busybox_image: str, docker_client: docker.DockerClient,
        capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_project(tmp_path, busybox_image, """\
    version: 1
    image: {repository: local/immu-parallel-timeout}
    tests:
      hangs: {command: [sleep, "300"], timeout: 1s, junit: false}
      works: {command: [sh, -c, "sleep 3; cp /fixtures/it.xml /immu/results/"]}
    """)
    code, result, err = run_cli(["run", "-f", str(spec), "--no-push", "--parallel", "2"],
                                capsys)
    assert code == 1, err
    status = {s["name"]: s["status"] for s in result["suites"]}
    assert status == {"hangs": "timed_out", "works": "passed"}, status
    assert_clean(docker_client)


def test_the_cancel_sequence_in_the_middle_of_three_parallel_suites_leaves_nothing(
        tmp_path: Path, busybox_image: str, docker_client: docker.DockerClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write_project(tmp_path, busybox_image, f"""\
    version: 1
    image: {{repository: local/immu-parallel-cancel}}
    services:
      db: {{image: {busybox_image}, command: [sleep, "300"]}}
    tests:
      one: {{command: [sleep, "300"], services: [db], junit: false}}
      two: {{command: [sleep, "300"], services: [db], junit: false}}
      three: {{command: [sleep, "300"], junit: false}}
    """)
    monkeypatch.setenv("IMMU_PARALLEL", "3")
    proc = start(spec)
    label = f"immu.pid={proc.pid}"
    try:
        # two services and three test containers, all at once
        wait_for("the three suites", lambda: len(labelled(docker_client, label)[0]) == 5, proc)
        err, seconds = runner_cancel(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and seconds < 7.5, (seconds, err[-2000:])
    assert "Traceback" not in err
    assert labelled(docker_client, label) == ([], [])


def test_a_service_is_ready_when_its_own_health_test_passes_not_at_dockers_next_check(
        tmp_path: Path, busybox_image: str, docker_client: docker.DockerClient,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Docker runs the first health check one interval (here 60 s) after the start; the spec's
    test, run by immu meanwhile, passes at once, so the suite starts well within the 10 s
    startup-timeout (waiting for Docker alone, it would fail as not healthy in time)."""
    spec = write_project(tmp_path, busybox_image, f"""\
    version: 1
    image: {{repository: local/immu-probe}}
    services:
      db:
        image: {busybox_image}
        command: [sleep, "300"]
        healthcheck: {{test: [CMD-SHELL, "test -d /"], interval: 60s, retries: 3}}
        startup-timeout: 10s
    tests:
      uses-db: {{command: ["true"], services: [db], junit: false}}
    """)
    code, result, err = run_cli(["run", "-f", str(spec), "--no-push"], capsys)
    assert code == 0, err
    assert result["suites"][0]["status"] == "passed", result
    assert_clean(docker_client)


WARM = """\
version: 1
image: {repository: local/immu-warm}
services:
  db:
    image: BUSYBOX
    command: [sh, -c, "date +%s > /tmp/up; exec sleep 300"]
    healthcheck: {test: [CMD, "true"], interval: 200ms, retries: 100}
tests:
  one:
    command: [sh, -c, "cp /fixtures/it.xml /immu/results/"]
    services: [db]
  two:
    command: [sh, -c, "cp /fixtures/it.xml /immu/results/"]
    services: [db]
"""
SLOW_STEP = "RUN echo {nonce} && sleep 3 && date +%s > /tmp/built-at\n"  # never cached


def test_services_are_up_while_the_image_builds_and_each_suite_has_its_own(
        tmp_path: Path, busybox_image: str, docker_client: docker.DockerClient,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write_project(tmp_path, busybox_image, WARM.replace("BUSYBOX", busybox_image))
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + SLOW_STEP.format(nonce=uuid.uuid4().hex))
    monkeypatch.setenv("IMMU_KEEP", "1")  # keep the containers to read their clocks
    try:
        code, result, err = run_cli(["run", "-f", str(spec), "--no-push"], capsys)
        assert code == 0, err
        built_at = float(docker_client.containers.run(
            result["image_id"], ["cat", "/tmp/built-at"], remove=True).decode())
        services = [c for c in docker_client.containers.list(
            all=True, filters={"label": "immu.pid"}) if c.name.endswith("-db")
            and c.attrs["Config"]["Labels"].get("immu.pid") == str(os.getpid())]
        assert len(services) == 2, "each suite its own service container"
        for c in services:
            up = float(_read(c, "/tmp/up"))
            assert up < built_at, (c.name, up, built_at)  # started before the build ended
    finally:
        for c in docker_client.containers.list(all=True, filters={"label": "immu.pid"}):
            if c.attrs["Config"]["Labels"].get("immu.pid") == str(os.getpid()):
                c.remove(force=True)
        for n in docker_client.networks.list(filters={"label": "immu.pid"}):
            if n.attrs["Labels"].get("immu.pid") == str(os.getpid()):
                n.remove()


def _read(container: Any, path: str) -> str:
    """One small file out of a (stopped or running) container."""
    stream, _ = container.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.getmembers()[0]
        data = tar.extractfile(member)
        return data.read().decode() if data else ""


def test_a_failed_build_removes_the_services_it_had_started(
        tmp_path: Path, busybox_image: str, docker_client: docker.DockerClient,
        capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_project(tmp_path, busybox_image, WARM.replace("BUSYBOX", busybox_image))
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "RUN sleep 2 && exit 3\n")
    code = main(["run", "-f", str(spec), "--no-push"])
    err = capsys.readouterr().err
    assert code == 2 and "building image failed" in err, err
    assert_clean(docker_client)
