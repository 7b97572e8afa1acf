"""scripts/base-images.sh on the real engine: each offline base image works, re-runs are cache
hits, and the example service builds offline and passes both suites against immu-base/postgres.

Everything these tests create carries the label ``immu.test=1`` and is removed in ``finally``.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import docker
import pytest

from tests.support.docker_env import ROOT

pytestmark = pytest.mark.docker

SCRIPT = ROOT / "scripts" / "base-images.sh"
EXAMPLE = ROOT / "examples" / "python-service"
IMAGES = ("immu-base/busybox:1", "immu-base/debian:bookworm", "immu-base/python:3",
          "immu-base/postgres:15")
LABELS = {"immu.test": "1"}
SECOND = 1_000_000_000  # Docker healthcheck durations are in nanoseconds


def run_script(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run base-images.sh; fail the test with its stderr when it fails."""
    done = subprocess.run([str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        pytest.fail(f"scripts/base-images.sh exited {done.returncode}:\n{done.stderr[-4000:]}")
    return done


def image_ids(client: docker.DockerClient) -> dict[str, str]:
    """Current image ID of each base image."""
    return {name: client.images.get(name).id for name in IMAGES}


@pytest.fixture(scope="module")
def base_images(docker_client: docker.DockerClient) -> dict[str, str]:
    """All four images built (first build: ~1.5 min of debootstrap; later: a cache hit)."""
    done = run_script()
    assert done.stdout.split() == list(IMAGES)
    return image_ids(docker_client)


@pytest.fixture()
def track(docker_client: docker.DockerClient) -> Iterator[ExitStack]:
    """Registers removals of what a test creates; all run in ``finally`` order (LIFO)."""
    with ExitStack() as stack:
        yield stack


def network(client: docker.DockerClient, track: ExitStack) -> Any:
    """A private labelled network, removed after the test."""
    net = client.networks.create(f"immu-test-{uuid.uuid4().hex[:10]}", labels=LABELS)
    track.callback(net.remove)
    return net


def start(client: docker.DockerClient, track: ExitStack, image: str,
          command: list[str] | None = None, **kw: Any) -> Any:
    """A detached labelled container, force-removed after the test."""
    container = client.containers.run(image, command, detach=True, labels=LABELS, **kw)
    track.callback(container.remove, force=True)
    return container


def run_output(client: docker.DockerClient, image: str, command: list[str], **kw: Any) -> str:
    """Run ``command`` to completion in a labelled, auto-removed container; return its output."""
    out = client.containers.run(image, command, remove=True, labels=LABELS, **kw)
    return out.decode() if isinstance(out, bytes) else str(out)


def wait_healthy(container: Any, within_s: float) -> float:
    """Seconds until ``container`` is healthy; fails with its logs when it is not in time."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        container.reload()
        state = container.attrs["State"]
        if state.get("Health", {}).get("Status") == "healthy":
            return time.monotonic() - started
        if state["Status"] == "exited":
            break
        time.sleep(0.25)
    pytest.fail(f"{container.name} not healthy within {within_s} s:\n{container.logs().decode()}")


def postgres(client: docker.DockerClient, track: ExitStack, net: Any, **env: str) -> Any:
    """immu-base/postgres:15 on ``net`` as ``db``, with the healthcheck immu.yml files use."""
    return start(
        client, track, "immu-base/postgres:15", environment=env, network=net.name,
        networking_config={net.name: client.api.create_endpoint_config(aliases=["db"])},
        healthcheck={"test": ["CMD", "pg_isready", "-U", "postgres"], "interval": SECOND,
                     "timeout": 5 * SECOND, "retries": 60},
    )


def test_busybox_runs_shell_and_applets(docker_client: docker.DockerClient,
                                        base_images: dict[str, str]) -> None:
    image = "immu-base/busybox:1"
    assert run_output(docker_client, image, ["sh", "-c", "echo ok"]) == "ok\n"
    out = run_output(docker_client, image, [
        "sh", "-c", "which sleep cat mkdir wget nc && "
                    "echo hi > /tmp/f && cat /tmp/f && grep -c . /etc/passwd"], user="nobody")
    assert out.split() == ["/bin/sleep", "/bin/cat", "/bin/mkdir", "/bin/wget", "/bin/nc",
                           "hi", "2"]
    assert docker_client.images.get(image).attrs["Size"] < 5_000_000


def test_python_has_driver_pytest_and_pip(docker_client: docker.DockerClient,
                                          base_images: dict[str, str]) -> None:
    out = run_output(docker_client, "immu-base/python:3", [
        "sh", "-c", "python -c 'import pg8000, pytest, sys; print(sys.version_info[0])' && "
                    "pip --version && echo $PIP_BREAK_SYSTEM_PACKAGES && "
                    "test -s \"$SSL_CERT_FILE\" && test \"$PIP_CERT\" = \"$SSL_CERT_FILE\" && "
                    "echo certs-ok"])
    lines = out.splitlines()
    assert lines[0] == "3"
    assert lines[1].startswith("pip ") and "python 3." in lines[1]
    assert lines[2:] == ["1", "certs-ok"]


def test_postgres_healthy_and_accepts_password_login(docker_client: docker.DockerClient,
                                                     base_images: dict[str, str],
                                                     track: ExitStack) -> None:
    net = network(docker_client, track)
    db = postgres(docker_client, track, net, POSTGRES_PASSWORD="s3cr'et \"x\"",
                  POSTGRES_USER="app", POSTGRES_DB="notes")
    wait_healthy(db, 60)
    probe = (
        "import pg8000\n"
        "c = pg8000.connect(user='app', password='s3cr\\'et \"x\"', host='db', database='notes')\n"
        "cur = c.cursor(); cur.execute('select current_user, current_database()')\n"
        "print(*cur.fetchone())\n"
        "try:\n"
        "    pg8000.connect(user='app', password='wrong', host='db', database='notes')\n"
        "except Exception as e:\n"
        "    print('refused' if 'password authentication failed' in str(e) else repr(e))\n"
    )
    out = run_output(docker_client, "immu-base/python:3", ["python", "-c", probe],
                     network=net.name)
    assert out.splitlines() == ["app notes", "refused"]
    # postgres is PID 1 (no wrapper): SIGTERM is a clean shutdown with exit code 0.
    assert docker_client.images.get("immu-base/postgres:15").attrs["Config"]["StopSignal"] == \
        "SIGINT"
    db.kill(signal="SIGTERM")
    assert db.wait(timeout=30)["StatusCode"] == 0
    assert "database system is shut down" in db.logs().decode()


def test_postgres_without_password_explains(docker_client: docker.DockerClient,
                                            base_images: dict[str, str],
                                            track: ExitStack) -> None:
    db = start(docker_client, track, "immu-base/postgres:15", network_mode="none")
    assert db.wait(timeout=60)["StatusCode"] == 1
    assert "POSTGRES_PASSWORD is not set" in db.logs().decode()


def test_second_run_is_a_fast_cache_hit(docker_client: docker.DockerClient,
                                        base_images: dict[str, str]) -> None:
    started = time.monotonic()
    done = run_script(timeout=60)
    elapsed = time.monotonic() - started
    assert done.stdout.split() == list(IMAGES)
    assert "building" not in done.stderr and done.stderr.count("is up to date") == len(IMAGES)
    assert image_ids(docker_client) == base_images
    assert elapsed < 10, f"a cached run took {elapsed:.1f} s"


def test_concurrent_runs_serialise_and_agree(docker_client: docker.DockerClient,
                                             base_images: dict[str, str]) -> None:
    runs = [subprocess.Popen([str(SCRIPT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outputs]
    assert all(out.split() == list(IMAGES) for out, _ in outputs)
    assert image_ids(docker_client) == base_images


def junit_totals(container: Any, path: str) -> dict[str, int]:
    """tests/failures/errors of the JUnit file ``path`` copied out of ``container``."""
    stream, _ = container.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.extractfile(tar.getmembers()[0])
        assert member is not None
        root = ET.fromstring(member.read())
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    return {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors")}


def test_example_service_offline(docker_client: docker.DockerClient,
                                 base_images: dict[str, str], track: ExitStack) -> None:
    # --network none proves pip finds requirements.txt satisfied by Debian's packages; nocache
    # gives an image ID of our own, so removing it can never untag someone else's build.
    image, _ = docker_client.images.build(
        path=str(EXAMPLE), buildargs={"BASE_IMAGE": "immu-base/python:3"}, labels=LABELS,
        network_mode="none", nocache=True, rm=True)
    track.callback(docker_client.images.remove, image.id)
    net = network(docker_client, track)
    db = postgres(docker_client, track, net, POSTGRES_PASSWORD="test", POSTGRES_DB="notes")

    unit = start(docker_client, track, image.id,
                 ["pytest", "tests/unit", "--junitxml=/immu/results/unit.xml"],
                 network_mode="none")
    assert unit.wait(timeout=120)["StatusCode"] == 0, unit.logs().decode()
    unit_totals = junit_totals(unit, "/immu/results/unit.xml")
    assert unit_totals["tests"] >= 5 and unit_totals["failures"] == unit_totals["errors"] == 0

    wait_healthy(db, 60)
    url = {"DATABASE_URL": "postgresql://postgres:test@db:5432/notes"}
    suite = start(docker_client, track, image.id,
                  ["pytest", "tests/integration", "--junitxml=/immu/results/integration.xml"],
                  environment=url, network=net.name)
    assert suite.wait(timeout=120)["StatusCode"] == 0, suite.logs().decode()
    totals = junit_totals(suite, "/immu/results/integration.xml")
    assert totals["tests"] >= 4 and totals["failures"] == totals["errors"] == 0

    # The image's own CMD and HEALTHCHECK: the service becomes healthy and stores a note.
    service = start(docker_client, track, image.id, environment=url, network=net.name)
    wait_healthy(service, 60)
    post = ("import json, urllib.request as u; r = u.urlopen(u.Request("
            "'http://127.0.0.1:8000/notes', data=b'{\"text\": \"hi\"}', method='POST'));"
            "print(r.status, json.load(r)['text'])")
    code, out = service.exec_run(["python", "-c", post])
    assert (code, out.decode().strip()) == (0, "201 hi")
    assert service.attrs["Config"]["User"] == "app"
