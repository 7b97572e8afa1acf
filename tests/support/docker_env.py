"""Pytest fixtures for the real Docker engine, started through the project's own script."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support.sweep import remember

ROOT = Path(__file__).resolve().parents[2]
BUSYBOX = "immu-base/busybox:1"


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client for a running engine (scripts/ensure-docker.sh starts one if needed)."""
    done = subprocess.run([str(ROOT / "scripts" / "ensure-docker.sh")], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"no Docker engine and scripts/ensure-docker.sh failed:\n{done.stderr}")
    client = docker.from_env(timeout=120)
    remember(os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"))
    yield client
    client.close()


@pytest.fixture(scope="session")
def busybox_image(docker_client: docker.DockerClient) -> str:
    """The offline busybox base image (scripts/base-images.sh builds it, cached by content)."""
    done = subprocess.run([str(ROOT / "scripts" / "base-images.sh"), "busybox"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"scripts/base-images.sh busybox failed:\n{done.stderr}")
    return BUSYBOX


def labelled(client: docker.DockerClient, label: str) -> tuple[list[str], list[str]]:
    """Names of containers and networks carrying ``label`` (``key`` or ``key=value``)."""
    # The low-level lists: containers.list() inspects each one, and a container removed in
    # between (a cleanup under way) would fail the look-up.
    containers = [str(c["Names"][0]).lstrip("/")
                  for c in client.api.containers(all=True, filters={"label": label})]
    networks = [str(n["Name"]) for n in client.api.networks(filters={"label": label})]
    return containers, networks
