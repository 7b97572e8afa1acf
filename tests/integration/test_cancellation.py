"""Cancellation as the Actions runner does it, in each phase of ``immu run``, and ``immu gc``
after a real SIGKILL. The runner sends SIGINT, then SIGTERM 7.5 s later, then SIGKILL 2.5 s
after that: immu must be gone, its containers and networks removed, on SIGINT alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from tests.integration.test_pipeline_docker import write_project
from tests.support.act import ROOT
from tests.support.docker_env import labelled
from tests.support.engines import BUSYBOX, Engine, buildkit_engine  # noqa: F401

pytestmark = pytest.mark.docker
SPEC = """\
version: 1
image: {repository: local/immu-cancel}
services:
  db:
    image: BUSYBOX
    command: [sleep, "300"]
    healthcheck: {test: [CMD, "HEALTH"], interval: 200ms, retries: 1000}
    startup-timeout: 5m
tests:
  hang: {command: [sleep, "300"], services: [db], junit: false}
"""


def start(spec: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "IMMU_KEEP": ""}
    return subprocess.Popen([sys.executable, "-m", "immu_action", "run", "-f", str(spec),
                             "--no-push"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(what: str, done: Callable[[], bool], proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 90
    while not done():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"never reached: {what}"
        time.sleep(0.2)


def runner_cancel(proc: subprocess.Popen[str]) -> tuple[str, float]:
    """The runner's sequence; returns stderr and the seconds until the process was gone."""
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    for sig, wait in ((signal.SIGTERM, 7.5), (signal.SIGKILL, 2.5)):
        try:
            _, err = proc.communicate(timeout=wait)
            return err, time.monotonic() - started
        except subprocess.TimeoutExpired:
            proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    return err, time.monotonic() - started


@pytest.mark.parametrize("phase", ["build", "service", "suite"])
def test_the_runners_cancel_sequence_leaves_nothing_in_any_phase(
        tmp_path: Path, busybox_image: str, docker_client: docker.DockerClient,
        phase: str) -> None:
    healthy = "true" if phase == "suite" else "false"
    spec = write_project(tmp_path, busybox_image, SPEC.replace("BUSYBOX", busybox_image)
                         .replace("HEALTH", healthy))
    if phase == "build":
        dockerfile = tmp_path / "Dockerfile"
        dockerfile.write_text(dockerfile.read_text() + "RUN echo building-slowly; sleep 300\n")
    proc = start(spec)
    label = f"immu.pid={proc.pid}"
    try:
        if phase == "build":
            wait_for("the slow build step", lambda: bool(build_steps(docker_client)), proc)
        elif phase == "service":
            wait_for("the service", lambda: len(labelled(docker_client, label)[0]) == 1, proc)
        else:
            wait_for("the suite", lambda: len(labelled(docker_client, label)[0]) == 2, proc)
        err, seconds = runner_cancel(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err  # SIGINT alone was enough: no SIGKILL came
    assert seconds < 7.5, f"took {seconds:.1f}s: the runner would have sent SIGTERM"
    assert "Traceback" not in err and "cancelled" in err, err
    assert labelled(docker_client, label) == ([], [])
    deadline = time.monotonic() + 15  # the engine stops a build whose client went away
    while build_steps(docker_client) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert build_steps(docker_client) == [], "the cancelled build's step still runs"


def build_steps(client: docker.DockerClient) -> list[str]:
    """Containers (of the legacy builder) running the slow build step. One list call: the
    builder removes its containers at any moment, and ``containers.list`` inspects each one
    it listed (NotFound when one went in between)."""
    return [str(c["Names"][0]) for c in client.api.containers(all=True)
            if "building-slowly" in str(c.get("Command") or "")]


def test_gc_removes_what_a_sigkilled_run_left(tmp_path: Path, busybox_image: str,
                                              docker_client: docker.DockerClient) -> None:
    spec = write_project(tmp_path, busybox_image, SPEC.replace("BUSYBOX", busybox_image)
                         .replace("HEALTH", "true"))
    proc = start(spec)
    label = f"immu.pid={proc.pid}"
    try:
        wait_for("the suite", lambda: len(labelled(docker_client, label)[0]) == 2, proc)
        proc.kill()  # SIGKILL: no cleanup can run
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = labelled(docker_client, label)
    assert len(left[0]) == 2 and len(left[1]) == 1, left  # the leftovers gc is for
    done = subprocess.run([sys.executable, "-m", "immu_action", "gc"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "removed 3 leftover resource(s)" in done.stderr, done.stderr
    assert labelled(docker_client, label) == ([], [])


def _running(pattern: str) -> bool:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True,
                          check=False).returncode == 0


def test_the_cancel_sequence_stops_a_buildkit_build(
        tmp_path: Path, buildkit_engine: Engine) -> None:  # noqa: F811
    """SIGINT in the middle of a buildx build: immu is gone within the runner's 7.5 s, and so
    are buildx and the build step BuildKit was running (no orphan keeps building)."""
    spec = write_project(tmp_path, BUSYBOX, SPEC.replace("BUSYBOX", BUSYBOX)
                         .replace("HEALTH", "true"))
    dockerfile = tmp_path / "Dockerfile"
    step = f"slowly-{tmp_path.name}"  # stays on the shell's command line (no exec)
    dockerfile.write_text(dockerfile.read_text() + f"RUN sh -c 'sleep 300; true' {step}\n")
    proc = start(spec)
    try:
        wait_for("the slow BuildKit step", lambda: _running(step), proc)
        err, seconds = runner_cancel(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and seconds < 7.5, (seconds, err[-2000:])
    deadline = time.monotonic() + 15
    while (_running(step) or _running("docker-buildx build")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running(step), "the cancelled build step still runs"
    assert not _running(f"docker-buildx build.*{tmp_path}"), "buildx outlived immu"
