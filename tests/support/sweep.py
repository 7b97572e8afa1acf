"""Pytest plugin: the images test sessions left in the engines are removed when they end.

Tests build and pull hundreds of images (``local/immu-*``, and names on loopback registries).
Left behind, they pile up in the engines' data roots, which live in the project's cache and
outlast a run: a store of hundreds of images makes every later ``docker rmi`` and containerd
garbage collection slower (seen here: 700 images, 0.8 s per removal), and builds too.

Only what the sessions made goes: an engine's images are noted when a session first uses it
(``Session.remember``), and at the end an image that was not there then goes if every name
it has is a test's (a loopback registry's, ``local/...``) or it has none; a test's name added
to an image that was there is taken off it. Images a user had, the offline base images
(``immu-base/...``) and anything named otherwise stay. Sessions that overlap (two checkouts
on one machine) share one note per engine, the one taken before the first of them used it,
and the last of them to end sweeps for all: until then another one may still use its images.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
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
    """An engine's images when the sessions first used it: IDs and names."""

    ids: frozenset[str]
    names: frozenset[str]


def _names(image: Mapping[str, Any]) -> list[str]:
    return [str(t) for t in image.get("RepoTags") or [] if t != "<none>:<none>"]


def seen(images: list[Mapping[str, Any]]) -> Seen:
    return Seen(ids=frozenset(str(i["Id"]) for i in images),
                names=frozenset(n for i in images for n in _names(i)))


def leftovers(images: list[Mapping[str, Any]], before: Seen) -> tuple[list[str], list[str]]:
    """What of ``images`` (the engine API's list) the sessions left: (IDs of images they
    made, test names they gave images that were there)."""
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
    """Remove what the sessions left on ``host``; how many images went."""
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


class Session:
    """One test session's part: ``begin``, ``remember`` each engine it uses, ``end``. Locks
    in ``root``: each session holds ``sessions.lock`` shared; the notes are files in
    ``root/notes`` (one per engine), written under ``notes.lock``."""

    def __init__(self, root: Path = CACHE / "test-sessions") -> None:
        self.root = root
        self.hosts: list[str] = []
        self._held: IO[str] | None = None

    def begin(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._held = (self.root / "sessions.lock").open("a")
        try:  # the only session: notes left by a session that died are stale
            fcntl.flock(self._held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with self._notes():
                shutil.rmtree(self.root / "notes", ignore_errors=True)
        except BlockingIOError:
            pass
        fcntl.flock(self._held, fcntl.LOCK_SH)

    def remember(self, host: str) -> None:
        """Note ``host``'s images before this session adds any (unless an overlapping
        session noted them before)."""
        if self._held is None or host in self.hosts:
            return
        with self._notes():
            note = self._note(host)
            if not note.exists():
                with closing(docker.DockerClient(base_url=host, timeout=120)) as client:
                    before = seen(client.api.images())
                note.parent.mkdir(parents=True, exist_ok=True)
                note.write_text(json.dumps({"host": host, "ids": sorted(before.ids),
                                            "names": sorted(before.names)}))
        self.hosts.append(host)

    def end(self) -> dict[str, int] | None:
        """Sweep every noted engine if no other session runs (None when one does): images
        removed per engine."""
        if self._held is None:
            return {}
        try:
            fcntl.flock(self._held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._held.close()  # the last one to end sweeps
            self._held = None
            return None
        removed = {}
        with self._notes():
            for note in sorted((self.root / "notes").glob("*.json")):
                data = json.loads(note.read_text())
                before = Seen(ids=frozenset(data["ids"]), names=frozenset(data["names"]))
                try:
                    removed[data["host"]] = sweep(data["host"], before)
                except docker.errors.DockerException as e:
                    sys.stderr.write(f"\nsweep: {data['host']}: {e}\n")
                note.unlink()
        self._held.close()
        self._held = None
        return removed

    def _note(self, host: str) -> Path:
        return self.root / "notes" / (hashlib.sha256(host.encode()).hexdigest()[:16] + ".json")

    @contextmanager
    def _notes(self) -> Iterator[None]:
        with (self.root / "notes.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


SESSION = Session()


def remember(host: str) -> None:
    """Note the images ``host``'s engine has before this session's tests add theirs."""
    SESSION.remember(host)


def pytest_sessionstart(session: pytest.Session) -> None:
    SESSION.begin()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("IMMU_TEST_KEEP_IMAGES"):
        return  # the notes stay until a session begins alone: nothing is removed
    started = time.monotonic()
    removed = SESSION.end()  # also a session that used no engine, if it is the last one
    if removed is None and SESSION.hosts:
        sys.stderr.write("\nsweep: another test session uses the engines; the last one to "
                         "end removes the images left\n")
    elif any(removed.values()):
        sys.stderr.write(f"\nsweep: {sum(removed.values())} test images removed from "
                         f"{len(removed)} engines in {time.monotonic() - started:.0f} s\n")
