"""The engines users have, for tests that build, push and prove tested==shipped on each:

- ``docker20``: Debian 12's docker.io 20.10, the system engine, no buildx (the engine API's
  legacy builder);
- ``docker26``: Docker 26 with buildx from Debian 13, classic image store (as GitHub-hosted
  runners have it today);
- ``docker26-containerd``: the same with the containerd snapshotter (fresh Docker 29
  installs), where an image ID is its manifest or index digest.

Each is started through the project's own scripts (``ensure-docker.sh``, ``engines.sh``), with
the offline busybox base image built on it. A test gets the environment ``immu`` needs:
``DOCKER_HOST`` and ``IMMU_BUILDX``.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import pytest

from tests.support.docker_env import BUSYBOX, ROOT
from tests.support.sweep import remember

ENGINES = ("docker20", "docker26", "docker26-containerd")
BUILDKIT_ENGINES = ("docker26", "docker26-containerd")


@dataclass(frozen=True)
class Engine:
    """A running engine: its name, the environment that selects it, a client."""

    name: str
    env: dict[str, str]
    client: docker.DockerClient

    @property
    def containerd_store(self) -> bool:
        return self.name == "docker26-containerd"


def start_engine(name: str, images: tuple[str, ...] = ("busybox",)) -> dict[str, str]:
    """Start ``name`` (once per session) with the offline ``images`` on it; its environment."""
    env = _start(name)
    run([str(ROOT / "scripts" / "base-images.sh"), *images], env, what="base-images.sh")
    return env


@functools.cache
def _start(name: str) -> dict[str, str]:
    """Start ``name`` (once per session) with busybox on it; its environment."""
    run([str(ROOT / "scripts" / "ensure-docker.sh")], {}, what="ensure-docker.sh")
    if name == "docker20":
        env = {"DOCKER_HOST": os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"),
               "IMMU_BUILDX": "off"}
    else:
        out = run([str(ROOT / "scripts" / "engines.sh"), "start", name], {},
                  what=f"engines.sh start {name}")
        env = dict(re.findall(r"^export (\w+)=(.*)$", out, re.M))
    run([str(ROOT / "scripts" / "base-images.sh"), "busybox"], env, what="base-images.sh")
    remember(env["DOCKER_HOST"])
    return env


def run(cmd: list[str], env: dict[str, str], *, what: str) -> str:
    done = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=900, check=False)
    if done.returncode != 0:
        pytest.fail(f"{what} failed:\n{done.stderr[-4000:]}", pytrace=False)
    return done.stdout


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """Each engine in turn, selected for ``immu`` through the environment."""
    yield from _engine(request.param, monkeypatch)


@pytest.fixture(params=BUILDKIT_ENGINES)
def buildkit_engine(request: pytest.FixtureRequest,
                    monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """Each engine with buildx."""
    yield from _engine(request.param, monkeypatch)


@pytest.fixture
def containerd_engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """Docker 26 on the containerd store: where the registry cache is exported as its own
    manifest (``mode=max``), after the image."""
    yield from _engine("docker26-containerd", monkeypatch)


def _engine(name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    env = _start(name)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    client = docker.DockerClient(base_url=env["DOCKER_HOST"], timeout=120)
    try:
        yield Engine(name=name, env=env, client=client)
    finally:
        client.close()


__all__ = ["BUILDKIT_ENGINES", "BUSYBOX", "ENGINES", "Engine", "buildkit_engine",
           "containerd_engine", "engine", "start_engine"]
