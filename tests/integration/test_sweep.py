"""The test session's sweep (tests/support/sweep.py) on each real engine: what a session made
goes, what was there and what is not a test's stays."""

from __future__ import annotations

import uuid
from pathlib import Path

import docker
import pytest

from tests.support.engines import BUSYBOX, Engine, engine  # noqa: F401
from tests.support.sweep import Session, seen, sweep


def _made(client: docker.DockerClient, name: str) -> str:
    """A new image (a busybox container committed, with a label of its own) named ``name``."""
    container = client.containers.create(BUSYBOX, ["true"])
    try:
        repository, tag = name.rsplit(":", 1)
        image = container.commit(repository=repository, tag=tag,
                                 changes=[f"LABEL immu.sweep={uuid.uuid4().hex}"])
    finally:
        container.remove(force=True)
    return str(image.id)


def _exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_the_sweep_removes_what_the_session_made_and_nothing_else(
        engine: Engine) -> None:  # noqa: F811
    client, host = engine.client, engine.env["DOCKER_HOST"]
    run = uuid.uuid4().hex[:8]
    kept = f"immu-sweep-keep/{run}:1"  # not a test's name: it stays
    pre_existing = _made(client, kept)
    before = seen(client.api.images())
    ours = [_made(client, f"local/immu-sweep-{run}:1"),
            _made(client, f"127.0.0.1:5999/immu-sweep/{run}:x")]
    client.images.get(BUSYBOX).tag(f"localhost:5999/immu-sweep/{run}", "base")
    user_new = _made(client, f"immu-sweep-user/{run}:2")  # new, but not a test's name
    try:
        removed = sweep(host, before)
        assert removed == 2
        for image_id in ours:
            assert not _exists(client, image_id)
        assert not _exists(client, f"localhost:5999/immu-sweep/{run}:base")
        assert _exists(client, BUSYBOX)  # the name came off; the image it was given stays
        assert _exists(client, pre_existing) and _exists(client, kept)
        assert _exists(client, user_new)
    finally:
        for ref in (kept, f"immu-sweep-user/{run}:2"):
            if _exists(client, ref):
                client.images.remove(ref, force=True)


@pytest.mark.parametrize("names", [[], ["<none>:<none>"]])
def test_an_image_without_a_name_that_the_session_made_is_swept(names: list[str]) -> None:
    from tests.support.sweep import Seen, leftovers

    before = Seen(ids=frozenset({"sha256:old"}), names=frozenset({"immu-base/busybox:1"}))
    images = [{"Id": "sha256:new", "RepoTags": names},
              {"Id": "sha256:old", "RepoTags": ["127.0.0.1:1/x:y"]}]  # its only name: kept
    assert leftovers(images, before) == (["sha256:new"], [])


def test_overlapping_sessions_share_the_note_and_the_last_one_sweeps_for_all(
        tmp_path: Path, engine: Engine) -> None:  # noqa: F811
    """Two checkouts' test sessions at once: the first to end removes nothing (the other
    may still use its images); the last removes what both made, including what the other
    made before it began, and what was there before the first stays."""
    client, host = engine.client, engine.env["DOCKER_HOST"]
    run = uuid.uuid4().hex[:8]
    first, second = Session(tmp_path), Session(tmp_path)
    first.begin()
    first.remember(host)
    made_by_first = _made(client, f"local/immu-sweep-{run}:first")
    second.begin()
    second.remember(host)
    made_by_second = _made(client, f"local/immu-sweep-{run}:second")
    assert first.end() is None  # the second still runs
    assert _exists(client, made_by_first) and _exists(client, made_by_second)
    assert second.end() == {host: 2}
    assert not _exists(client, made_by_first) and not _exists(client, made_by_second)
    assert _exists(client, BUSYBOX)


def test_a_session_alone_forgets_the_notes_of_one_that_died(
        tmp_path: Path, engine: Engine) -> None:  # noqa: F811
    """A session killed before its end leaves its note; the next one that begins alone
    notes the engine anew, so images made since (a user's included) are not taken as the
    dead session's."""
    client, host = engine.client, engine.env["DOCKER_HOST"]
    dead = Session(tmp_path)
    dead.begin()
    dead.remember(host)
    dead._held.close()  # type: ignore[union-attr]  # killed: its lock is gone with it
    between = _made(client, f"local/immu-sweep-{uuid.uuid4().hex[:8]}:between")
    try:
        alone = Session(tmp_path)
        alone.begin()
        alone.remember(host)
        assert alone.end() == {host: 0}
        assert _exists(client, between)
    finally:
        client.images.remove(between, force=True)
