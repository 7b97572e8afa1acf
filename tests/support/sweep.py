"""Pytest plugin: the images a test session left in the engines are removed when it ends.

Tests build and pull hundreds of images (``local/immu-*``, and names on this session's
loopback registries). Left behind, they pile up in the engines' data roots, which live in the
project's cache and outlast a run: a store of hundreds of images makes every later ``docker
rmi`` and containerd garbage collection slower (seen here: 700 images, 0.8 s per removal).

Only what this session made goes: an engine's images are noted when the session first uses
it (``remember``), and at the end an image that was not there then goes if every name it has
is a test's (a loopback registry's, ``local/...``) or it has none; a test's name added to an
image that was there is taken off it. Images a user had, the offline base images
(``immu-base/...``) and anything named otherwise stay. While another test session uses the
same engines (two checkouts on one machine), nothing is removed: its images look new here
too; the last session to end sweeps what is new since it began.
"""

from __future__ import annotations

import fcntl
import os
import re
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import docker
import pytest

# A test's names: on a loopback registry (any port), or ``local/...``.
TEST_NAME = re.compile(r"^(?:(?:127\.0\.0\.1|localhost|\[::1\]):\d+/|local/)")
# Beside the engines' data roots (scripts/engines.sh): the sessions that share them.
CACHE = Path(os.environ.get("IMMU_CACHE") or Path(
    os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "immu-action")


@dataclass(frozen=True)
class Seen:
    """An engine's images when the session first used it: IDs and names."""

    ids: frozenset[str]
    names: frozenset[str]


_before: dict[str, Seen] = {}  # DOCKER_HOST -> what it had
_lock: IO[str] | None = None


def _names(image: Mapping[str, Any]) -> list[str]:
    return [str(t) for t in image.get("RepoTags") or [] if t != "<none>:<none>"]


def seen(images: list[Mapping[str, Any]]) -> Seen:
    return Seen(ids=frozenset(str(i["Id"]) for i in images),
                names=frozenset(n for i in images for n in _names(i)))


def remember(host: str) -> None:
    """Note the images ``host``'s engine has before this session's tests add theirs."""
    if host not in _before:
        with closing(docker.DockerClient(base_url=host, timeout=120)) as client:
            _before[host] = seen(client.api.images())


def leftovers(images: list[Mapping[str, Any]], before: Seen) -> tuple[list[str], list[str]]:
    """What of ``images`` (the engine API's list) the session left: (IDs of images it made,
    test names it gave images that were there)."""
    made, names = [], []
    for image in images:
        own = _names(image)
        if image["Id"] not in before.ids:
            if all(TEST_NAME.match(n) for n in own):
                made.append(str(image["Id"]))
        else:
            new = [n for n in own if n not in before.names and TEST_NAME.match(n)]
            if len(new) < len(own):  # it keeps a name: taking a name off deletes nothing
                names += new
    return made, names


def sweep(host: str, before: Seen) -> int:
    """Remove what this session left on ``host``; how many images went."""
    with closing(docker.DockerClient(base_url=host, timeout=300)) as client:
        made, names = leftovers(client.api.images(), before)

        def remove(image: str) -> bool:
            try:
                # An ID: the image and all its names; a name: only that name.
                client.api.remove_image(image, force=image in made)
            except docker.errors.NotFound:
                return False  # a parent of one removed before
            except docker.errors.APIError as e:
                sys.stderr.write(f"sweep: {image[:40]} on {host} stays: {e}\n")
                return False
            return image in made

        with ThreadPoolExecutor(max_workers=4) as pool:
            return sum(pool.map(remove, [*names, *made]))


def pytest_sessionstart(session: pytest.Session) -> None:
    global _lock
    CACHE.mkdir(parents=True, exist_ok=True)
    _lock = (CACHE / "test-sessions.lock").open("a")
    fcntl.flock(_lock, fcntl.LOCK_SH)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _lock is None or not _before or os.environ.get("IMMU_TEST_KEEP_IMAGES"):
        return
    try:
        fcntl.flock(_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.stderr.write("\nsweep: another test session uses the engines; its last one "
                         "removes the images left\n")
        return
    for host, before in _before.items():
        started = time.monotonic()
        try:
            n = sweep(host, before)
        except docker.errors.DockerException as e:
            sys.stderr.write(f"\nsweep: {host}: {e}\n")
            continue
        if n:
            sys.stderr.write(f"\nsweep: {n} test images removed from {host} "
                             f"in {time.monotonic() - started:.0f} s\n")
