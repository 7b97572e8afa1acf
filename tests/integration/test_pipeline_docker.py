"""The core pipeline against the real Docker engine: build, services, suites, cleanup."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from immu_action.cli import main
from tests.support.docker_env import ROOT, labelled

pytestmark = pytest.mark.docker

JUNIT_ONE_FAIL = (
    '<?xml version="1.0"?><testsuite name="calc" tests="2">'
    '<testcase classname="calc" name="test_add" time="0.01"/>'
    '<testcase classname="calc" name="test_div" time="0.02" file="calc_test.py" line="7">'
    '<failure message="ZeroDivisionError">calc_test.py:7: ZeroDivisionError</failure>'
    "</testcase></testsuite>"
)


def write_project(tmp: Path, base: str, spec: str, *, marker: str = "v1") -> Path:
    """A git repo with a Dockerfile on ``base`` and ``immu.yml``; returns the spec path."""
    (tmp / "fixtures").mkdir()
    (tmp / "fixtures" / "unit.xml").write_text(JUNIT_ONE_FAIL)
    (tmp / "fixtures" / "it.xml").write_text(
        '<testsuite name="it"><testcase name="reach"/></testsuite>'
    )
    (tmp / "Dockerfile").write_text(
        f"FROM {base}\nARG GREETING=none\nRUN echo \"$GREETING\" > /greeting\n"
        f"COPY fixtures /fixtures\nRUN echo {marker} > /marker\nUSER 65534\n"
    )
    (tmp / "immu.yml").write_text(textwrap.dedent(spec))
    git = ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(tmp)], check=True)
    subprocess.run(["git", "-C", str(tmp), "remote", "add", "origin",
                    "https://user:s3cret@git.example.invalid/acme/shop.git"], check=True)
    subprocess.run(["git", "-C", str(tmp), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(tmp), "commit", "-qm", "init"], check=True)
    return tmp / "immu.yml"


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    """Run the CLI in-process with --json; returns (exit code, parsed stdout, stderr)."""
    code = main([*args, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def assert_clean(client: docker.DockerClient) -> None:
    """Nothing labelled by a run of this process remains."""
    containers, networks = labelled(client, f"immu.pid={os.getpid()}")
    assert (containers, networks) == ([], [])


SPEC_GOOD = """\
version: 1
image:
  repository: local/immu-it
  build-args: {GREETING: hello-arg}
  labels: {org.example.team: qa}
services:
  web:
    build: {context: ., dockerfile: Dockerfile}
    command: [sh, -c, "sleep 1; touch /tmp/ready; while true; do echo ok | nc -l -p 8080; done"]
    healthcheck: {test: [CMD, test, -f, /tmp/ready], interval: 200ms, retries: 50}
tests:
  unit:
    command: [sh, -c, "cat /greeting; cp /fixtures/unit.xml /immu/results/"]
  integration:
    command: [sh, -c, "nc $TARGET 8080 </dev/null | grep ok && cp /fixtures/it.xml $IMMU_RESULTS/"]
    services: [web]
    env: {TARGET: web}
"""


def test_build_labels_and_run(tmp_path: Path, busybox_image: str,
                              docker_client: docker.DockerClient,
                              capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_project(tmp_path, busybox_image, SPEC_GOOD)
    code, built, _ = run_cli(["build", "-f", str(spec)], capsys)
    assert code == 0
    labels = docker_client.images.get(built["image_id"]).labels
    sha = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["org.opencontainers.image.source"] == "https://git.example.invalid/acme/shop"
    assert "s3cret" not in json.dumps(labels)
    assert labels["org.opencontainers.image.version"] == sha[:12]
    assert labels["org.opencontainers.image.created"].endswith("Z")
    assert labels["org.example.team"] == "qa"
    assert built["tag"] == f"local/immu-it:sha-{sha}"

    code, result, err = run_cli(["run", "-f", str(spec)], capsys)
    assert code == 1, err
    assert result["image_id"] == built["image_id"]  # same commit, same labels: same image
    suites = {s["name"]: s for s in result["suites"]}
    assert suites["unit"]["status"] == "failed"
    assert suites["unit"]["totals"] == {"tests": 2, "passed": 1, "failed": 1, "errors": 0,
                                        "skipped": 0, "duration_s": 0.03}
    assert suites["unit"]["failures"][0]["file"] == "calc_test.py"
    assert suites["unit"]["failures"][0]["line"] == 7
    assert suites["integration"]["status"] == "passed", suites["integration"]
    assert result["totals"]["tests"] == 3 and result["totals"]["failed"] == 1
    assert "hello-arg" in err  # the build arg reached the image; the suite printed it
    assert_clean(docker_client)


def test_tests_run_the_exact_image_not_the_tag(tmp_path: Path, busybox_image: str,
                                               docker_client: docker.DockerClient,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    spec_text = """\
    version: 1
    image: {repository: local/immu-exact}
    tests:
      which: {command: [sh, -c, "test \\"$(cat /marker)\\" = v1"], junit: false}
    """
    spec = write_project(tmp_path, busybox_image, spec_text, marker="v1")
    code, first, _ = run_cli(["build", "-f", str(spec)], capsys)
    assert code == 0
    # Re-point the same tag at different content: a test by ID must not follow it.
    (tmp_path / "Dockerfile").write_text(f"FROM {busybox_image}\nRUN echo v2 > /marker\n")
    docker_client.images.build(path=str(tmp_path), tag=first["tag"], rm=True)
    code, by_id, _ = run_cli(["test", "-f", str(spec), "--image", first["image_id"]], capsys)
    assert code == 0
    assert by_id["image_id"] == first["image_id"]
    code, by_tag, _ = run_cli(["test", "-f", str(spec)], capsys)
    assert code == 1  # the tag now names the v2 image, resolved to its own ID
    assert by_tag["image_id"] != first["image_id"]
    assert_clean(docker_client)


def test_timeout_no_junit_and_unhealthy_service(tmp_path: Path, busybox_image: str,
                                                docker_client: docker.DockerClient,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    spec_text = """\
    version: 1
    image: {repository: local/immu-bad}
    services:
      never:
        image: BUSYBOX
        command: [sleep, "300"]
        healthcheck: {test: [CMD, "false"], interval: 200ms, retries: 1000}
        startup-timeout: 2s
    tests:
      slow:
        command: [sh, -c, "cp /fixtures/it.xml /immu/results/; echo started; sleep 300"]
        timeout: 2s
      crash:
        command: [sh, -c, "echo something broke >&2; exit 3"]
      blocked:
        command: ["true"]
        services: [never]
    """.replace("BUSYBOX", busybox_image)
    spec = write_project(tmp_path, busybox_image, spec_text)
    started = time.monotonic()
    code, result, err = run_cli(["run", "-f", str(spec)], capsys)
    assert code == 1
    assert "Traceback" not in err
    assert time.monotonic() - started < 90  # bounded: nothing waited for its 300 s
    suites = {s["name"]: s for s in result["suites"]}
    slow = suites["slow"]
    assert slow["status"] == "timed_out"
    assert slow["totals"]["tests"] == 2 and slow["totals"]["passed"] == 1
    assert slow["totals"]["errors"] == 1
    assert "timed out after 2s" in slow["failures"][0]["message"]
    assert "started" in slow["failures"][0]["details"]
    crash = suites["crash"]
    assert crash["status"] == "error" and crash["totals"]["errors"] == 1
    assert crash["totals"]["tests"] == 1
    assert "exited with code 3 and wrote no JUnit" in crash["failures"][0]["message"]
    assert "something broke" in crash["failures"][0]["details"]
    blocked = suites["blocked"]
    assert blocked["status"] == "error"
    assert "service never" in blocked["failures"][0]["message"]
    assert "healthy" in blocked["failures"][0]["message"]
    assert_clean(docker_client)


def test_sigterm_removes_everything(tmp_path: Path, busybox_image: str,
                                   docker_client: docker.DockerClient) -> None:
    spec_text = """\
    version: 1
    image: {repository: local/immu-sigterm}
    services:
      db: {image: BUSYBOX, command: [sleep, "300"]}
    tests:
      hang: {command: [sleep, "300"], services: [db]}
    """.replace("BUSYBOX", busybox_image)
    spec = write_project(tmp_path, busybox_image, spec_text)
    image = docker_client.images.build(path=str(tmp_path), rm=True)[0].id
    proc = subprocess.Popen(
        [sys.executable, "-m", "immu_action", "test", "-f", str(spec), "--image", image],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    label = f"immu.pid={proc.pid}"
    try:
        deadline = time.monotonic() + 60
        while len(labelled(docker_client, label)[0]) < 2:  # service + test container
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the suite never started"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "SIGTERM" in err
    assert labelled(docker_client, label) == ([], [])


def test_keep_and_gc(tmp_path: Path, busybox_image: str, docker_client: docker.DockerClient,
                     capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = write_project(tmp_path, busybox_image, """\
    version: 1
    image: {repository: local/immu-keep}
    tests:
      quick: {command: ["true"], junit: false}
    """)
    monkeypatch.setenv("IMMU_KEEP", "1")
    code, result, _ = run_cli(["run", "-f", str(spec)], capsys)
    assert code == 0 and result["ok"]
    mine = f"immu.pid={os.getpid()}"
    kept = labelled(docker_client, mine)
    assert kept[0] and kept[1]  # container and network kept for debugging
    monkeypatch.delenv("IMMU_KEEP")
    # A live run's resources survive a plain gc; a dead run's do not.
    assert main(["gc"]) == 0
    assert labelled(docker_client, mine) == kept
    dead = docker_client.containers.create(
        busybox_image, ["true"], labels={"immu.run": "deadbeef", "immu.pid": "999999999",
                                         "immu.host": os.uname().nodename})
    assert main(["gc"]) == 0
    capsys.readouterr()
    assert labelled(docker_client, "immu.run=deadbeef") == ([], [])
    run_id = docker_client.containers.get(kept[0][0]).labels["immu.run"]
    for c in docker_client.containers.list(all=True, filters={"label": f"immu.run={run_id}"}):
        c.remove(force=True)
    for n in docker_client.networks.list(filters={"label": f"immu.run={run_id}"}):
        n.remove()
    assert dead.id


def test_no_engine_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "immu.yml").write_text("version: 1\nimage: {repository: local/x}\n"
                                        "tests: {u: {command: ['true']}}\n")
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no.sock"}
    done = subprocess.run([sys.executable, "-m", "immu_action", "build", "-f",
                           str(tmp_path / "immu.yml")], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 4
    assert "no Docker engine answers" in done.stderr
    assert "ensure-docker.sh" in done.stderr
    assert "Traceback" not in done.stderr


def test_build_failure_names_the_step(tmp_path: Path, busybox_image: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_project(tmp_path, busybox_image, """\
    version: 1
    image: {repository: local/immu-broken}
    tests:
      u: {command: ["true"]}
    """)
    (tmp_path / "Dockerfile").write_text(f"FROM {busybox_image}\nRUN echo compiling; exit 7\n")
    code = main(["build", "-f", str(spec)])
    err = capsys.readouterr().err
    assert code == 2
    assert "building image failed" in err and "returned a non-zero code: 7" in err


def test_foreign_xml_is_skipped_and_truncated_junit_counts(
        tmp_path: Path, busybox_image: str, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_project(tmp_path, busybox_image, """\
    version: 1
    image: {repository: local/immu-xml}
    tests:
      mixed:
        command:
          - sh
          - -c
          - cp /fixtures/it.xml $IMMU_RESULTS/; echo '<coverage/>' > $IMMU_RESULTS/coverage.xml
      cut:
        command:
          - sh
          - -c
          - >-
            printf '<testsuite><testcase name="a"/><testcase name="b"/><testca'
            > $IMMU_RESULTS/cut.xml; sleep 300
        timeout: 1s
    """)
    code, result, err = run_cli(["run", "-f", str(spec)], capsys)
    assert code == 1
    suites = {s["name"]: s for s in result["suites"]}
    assert suites["mixed"]["status"] == "passed" and suites["mixed"]["totals"]["tests"] == 1
    assert "skipping coverage.xml" in err
    cut = suites["cut"]
    assert cut["status"] == "timed_out"
    assert cut["totals"]["passed"] == 2 and cut["totals"]["errors"] == 1
