"""A pushed build reaches the registry under its staging tag only, never under the local
``sha-<commit>`` tag (a name a promotion may own), on every engine; and ``immu run``
launches buildx before it imports docker-py, the registry's client or the later stages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.test_engines import assert_clean, project, run
from tests.support.engines import BUSYBOX, Engine, buildkit_engine, engine  # noqa: F401
from tests.support.registry import (  # noqa: F401
    PASSWORD,
    USER,
    Registry,
    registry,
    registry2,
    registry_env,
)

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


def test_a_pushed_build_reaches_the_registry_under_its_staging_tag_only(
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
    (tmp_path / "second").mkdir()
    second = project(tmp_path / "second", f"FROM {BUSYBOX}\nRUN echo second > /which\n",
                     SPEC.format(repository=f"{registry.host}/{name}-two"))
    code, two, err = run(["run", "-f", str(second), "--push", "--json"], capsys)
    assert code == 0 and two["tested_is_shipped"] is True, err
    served = registry.client().get_manifest(f"{name}-two", two["staging_tag"])
    assert served.digest == two["digest"]
    assert layers(registry, f"{name}-two", two["staging_tag"])[0] == base_layer
    tags = list(registry.client().list_tags(f"{name}-two"))
    assert not [t for t in tags if t.startswith("sha-")], tags  # the local tag stays local
    assert two["staging_tag"] in tags
    assert_clean(engine)


# Runs `immu run` in a fresh interpreter and records, when buildx is launched, which of the
# modules the build does not need are already imported.
_SPY = """\
import json, subprocess, sys
LATER = ("docker", "requests", "immu_action.stages.test", "immu_action.stages.push",
         "immu_action.adapters.registry.client", "immu_action.core.attestation",
         "concurrent.futures", "hmac")
seen = []
launch = subprocess.Popen.__init__
def spy(self, args, *a, **k):
    if "buildx" in str(args[0]):
        seen.append([m for m in LATER if m in sys.modules])
    launch(self, args, *a, **k)
subprocess.Popen.__init__ = spy
from immu_action.cli import main
code = main(sys.argv[2:])
open(sys.argv[1], "w").write(json.dumps({"code": code, "seen": seen}))
"""


def test_buildx_is_launched_before_docker_py_and_the_registry_client_are_imported(
        tmp_path: Path, buildkit_engine: Engine, registry: Registry,  # noqa: F811
        registry_env: None) -> None:  # noqa: F811
    """A build job's start-up is on every CI run: the build starts first and docker-py,
    requests and the later stages are imported (and the engine connected, the staging tag
    looked up) while BuildKit works. Measured: 0.31 s -> 0.21 s to the launch; then thread
    pools (concurrent.futures, logging), hmac/OpenSSL and the attestation model left for
    later too, 12 ms more."""
    name = f"immu-it/early-{buildkit_engine.name}-{uuid.uuid4().hex[:6]}"
    (tmp_path / "p").mkdir()
    spec = project(tmp_path / "p", f"FROM {BUSYBOX}\nRUN echo early > /which\n",
                   SPEC.format(repository=f"{registry.host}/{name}"))
    report = tmp_path / "spy.json"
    done = subprocess.run([sys.executable, "-c", _SPY, str(report), "run", "--mode", "build",
                           "--push", "-f", str(spec)], cwd=tmp_path / "p", text=True,
                          capture_output=True, timeout=300, check=False)
    got = json.loads(report.read_text())
    assert got["code"] == 0, done.stderr[-3000:]
    assert got["seen"] == [[]], got  # one launch, and none of those imported by then
    assert any(t.startswith("immu-staging") for t in registry.client().list_tags(name))


def test_a_registry_refusing_the_credentials_stops_the_build_under_way(
        tmp_path: Path, buildkit_engine: Engine, registry: Registry,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The staging tag is looked up while BuildKit works: a refused login ends the run at
    once (the build is stopped, not waited for), and nothing is left behind."""
    monkeypatch.setenv("IMMU_REGISTRY_USERNAME", "immu")
    monkeypatch.setenv("IMMU_REGISTRY_PASSWORD", "not-the-password-xyz")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty-docker-config"))
    (tmp_path / "p").mkdir()
    spec = project(tmp_path / "p", f"FROM {BUSYBOX}\nRUN sleep 60\n",
                   SPEC.format(repository=f"{registry.host}/immu-it/refused-early"))
    started = time.monotonic()
    code, out, err = run(["run", "--mode", "build", "--push", "-f", str(spec), "--json"],
                         capsys)
    took = time.monotonic() - started
    assert code == 4, err
    assert "401" in out["error"]["message"] or "unauthorized" in err.lower(), err
    assert took < 45, f"the build (RUN sleep 60) was waited for: {took:.0f}s"
    builds = [c for c in buildkit_engine.client.containers.list(all=True)
              if "sleep 60" in " ".join(c.attrs.get("Args") or [])]
    assert builds == []
    assert "not-the-password-xyz" not in err
    assert_clean(buildkit_engine)


_STORE = """#!{python} -I
import json, sys
server = sys.stdin.read().strip()
if sys.argv[1:] == ["get"] and server.endswith({host!r}):
    print(json.dumps({{"Username": {user!r}, "Secret": {password!r}}}))
else:
    print("credentials not found in native keychain")
    sys.exit(1)
"""


def test_the_users_docker_config_still_serves_other_registries_beside_immus_credentials(
        tmp_path: Path, buildkit_engine: Engine, registry: Registry,  # noqa: F811
        registry2: Registry, registry_env: None,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The base image is private on another registry, whose credentials only the user's
    credentials store has (``credsStore``: it answers for every host it knows); the push
    and the cache go with IMMU_REGISTRY_*. Both must reach buildx: before, buildx got a
    config holding immu's credentials alone and the base image's pull was refused (401)."""
    base = f"{registry2.host}/immu-it/private-base:{uuid.uuid4().hex[:8]}"
    client = buildkit_engine.client
    client.images.get(BUSYBOX).tag(base)
    try:
        for _ in client.api.push(base, stream=True, decode=True,
                                 auth_config={"username": USER, "password": PASSWORD}):
            pass
    finally:
        client.images.remove(base)  # BuildKit must pull it from the registry
    store = tmp_path / "bin" / "docker-credential-teststore"
    store.parent.mkdir()
    store.write_text(_STORE.format(python=sys.executable, host=registry2.host, user=USER,
                                   password=PASSWORD))
    store.chmod(0o755)
    monkeypatch.setenv("PATH", f"{store.parent}:{os.environ['PATH']}")
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"credsStore": "teststore"}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    (tmp_path / "p").mkdir()
    name = f"immu-it/private-{buildkit_engine.name}-{uuid.uuid4().hex[:6]}"
    spec = project(tmp_path / "p", f"FROM {base}\nRUN echo built > /which\n",
                   SPEC.format(repository=f"{registry.host}/{name}"))
    code, out, err = run(["run", "-f", str(spec), "--push", "--json"], capsys)
    assert code == 0, err
    assert out["tested_is_shipped"] is True
    assert "immu-buildcache" in list(registry.client().list_tags(name))  # the cache went too
    assert PASSWORD not in err
    assert json.loads((config / "config.json").read_text()) == {"credsStore": "teststore"}
    assert_clean(buildkit_engine)
