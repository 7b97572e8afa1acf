"""The push of a BuildKit build on the containerd store happens inside the build, before the
cache export: layers the registry holds in another repository (a company base image) are
mounted rather than uploaded again, and only the staging tag reaches the registry, never the
local ``sha-<commit>`` tag."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from tests.integration.test_engines import assert_clean, project, run
from tests.support.engines import BUSYBOX, Engine, engine  # noqa: F401
from tests.support.registry import Registry, registry, registry_env  # noqa: F401

pytestmark = pytest.mark.docker

SPEC = """\
    version: 1
    image: {{repository: {repository}}}
    tests:
      ok: {{command: ["true"], junit: false}}
    """


def layers(reg: Registry, repository: str, tag: str) -> list[str]:
    """The layer digests of the image manifest ``repository:tag`` serves."""
    return [layer["digest"] for layer in json.loads(
        reg.client().get_manifest(repository, tag).data)["layers"]]


def mount_attempts(reg: Registry, since: int, repository: str) -> set[str]:
    """Digests a client asked to mount into ``repository`` (``POST .../blobs/uploads/?mount=``)
    since log line ``since``, whatever the answer (201 mounted; 202: upload instead, as when
    the source the engine remembers is gone)."""
    lines = reg.log.read_text(errors="replace").splitlines()[since:]
    path = re.escape(f"/v2/{repository}/blobs/uploads/")
    found = (re.search(rf'"POST {path}\?\S*mount=(sha256(?::|%3A)[0-9a-f]{{64}})', x)
             for x in lines)
    return {m.group(1).replace("%3A", ":") for m in found if m}


def test_the_build_pushes_mounting_what_the_registry_has_and_only_the_staging_tag(
        tmp_path: Path, engine: Engine, registry: Registry,  # noqa: F811
        registry_env: None, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    name = f"immu-it/base-{engine.name}-{uuid.uuid4().hex[:6]}"
    # A first project puts the base image's layer into the registry, in its own repository.
    (tmp_path / "first").mkdir()
    first = project(tmp_path / "first", f"FROM {BUSYBOX}\nRUN echo first > /which\n",
                    SPEC.format(repository=f"{registry.host}/{name}-one"))
    code, one, err = run(["run", "-f", str(first), "--push", "--json"], capsys)
    assert code == 0, err
    base_layer = layers(registry, f"{name}-one", one["staging_tag"])[0]
    since = len(registry.log.read_text(errors="replace").splitlines())
    (tmp_path / "second").mkdir()
    second = project(tmp_path / "second", f"FROM {BUSYBOX}\nRUN echo second > /which\n",
                     SPEC.format(repository=f"{registry.host}/{name}-two"))
    code, two, err = run(["run", "-f", str(second), "--push", "--json"], capsys)
    assert code == 0 and two["tested_is_shipped"] is True, err
    served = registry.client().get_manifest(f"{name}-two", two["staging_tag"])
    assert served.digest == two["digest"]
    assert layers(registry, f"{name}-two", two["staging_tag"])[0] == base_layer
    if engine.containerd_store:
        # BuildKit's pusher came first: it asks to mount what the engine knows the registry
        # has (the cache exporter, pushing first, sent every layer as a new upload)
        assert base_layer in mount_attempts(registry, since, f"{name}-two")
    tags = list(registry.client().list_tags(f"{name}-two"))
    assert not [t for t in tags if t.startswith("sha-")], tags  # the local tag stays local
    assert two["staging_tag"] in tags
    assert_clean(engine)
