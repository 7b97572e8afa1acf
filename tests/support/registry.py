"""Pytest fixtures: two real distribution registries on loopback, and images pushed to them.

The registries are Debian's ``docker-registry`` started by ``scripts/registry.sh`` with
htpasswd auth (user ``immu``); the images are built ``FROM scratch`` by the real Docker
engine and pushed with ``docker push`` using a throw-away ``--config`` directory (the
machine's own ~/.docker is never touched). Instances are process-wide singletons so test
modules can import these fixtures directly or through ``pytest_plugins``.
"""

from __future__ import annotations

import atexit
import base64
import json
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from immu_action.adapters.registry.auth import Credentials
from immu_action.adapters.registry.client import RegistryClient

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "immu", "immu-test-pw-" + uuid.uuid4().hex[:8]
LABEL = "immu.test=1"


@dataclass(frozen=True)
class Registry:
    """A running registry instance."""

    name: str
    host: str
    port: int
    root: Path
    data: Path
    log: Path

    def client(self, **kwargs: object) -> RegistryClient:
        """A client with the instance's credentials."""
        return RegistryClient(self.host, credentials=Credentials(username=USER, password=PASSWORD),
                              **kwargs)  # type: ignore[arg-type]

    def blob_uploads(self) -> int:
        """Blob upload requests (POST/PUT/PATCH .../blobs/uploads/) in the access log."""
        text = self.log.read_text(errors="replace")
        return len(re.findall(r'"(?:POST|PUT|PATCH) /v2/[^ ]*/blobs/uploads/', text))

    def log_lines(self) -> int:
        return len(self.log.read_text(errors="replace").splitlines())

    def blob_uploads_since(self, line: int) -> list[str]:
        lines = self.log.read_text(errors="replace").splitlines()[line:]
        return [x for x in lines if re.search(r'"(?:POST|PUT|PATCH) /v2/[^ ]*/blobs/uploads/', x)]


_STATE: dict[str, Registry] = {}
_TMP = Path(tempfile.mkdtemp(prefix="immu-registry-"))
# Registered first, so it runs last (atexit is LIFO): after every instance has stopped.
atexit.register(shutil.rmtree, _TMP, True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _script(*args: str) -> str:
    env = {"IMMU_REGISTRY_ROOT": str(_TMP), "IMMU_REGISTRY_TEST_USER": USER,
           "IMMU_REGISTRY_TEST_PASSWORD": PASSWORD, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    done = subprocess.run([str(ROOT / "scripts" / "registry.sh"), *args], capture_output=True,
                          text=True, env=env, check=False)
    if done.returncode != 0:
        pytest.fail(f"scripts/registry.sh {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def start_registry(name: str) -> Registry:
    """Start (once per process) the instance ``name``; stopped at interpreter exit."""
    if name not in _STATE:
        port = _free_port()
        out = dict(kv.split("=", 1) for kv in _script("start", name, str(port)).split())
        _STATE[name] = Registry(name=name, host=f"127.0.0.1:{port}", port=port,
                                root=Path(out["root"]), data=Path(out["data"]),
                                log=Path(out["log"]))
        atexit.register(_script, "stop", name)
    return _STATE[name]


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The main registry instance."""
    return start_registry("main")


@pytest.fixture(scope="session")
def registry2() -> Registry:
    """A second registry, for cross-registry copies."""
    return start_registry("second")


@pytest.fixture
def registry_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials through IMMU_REGISTRY_USERNAME/PASSWORD (what the CLI reads)."""
    monkeypatch.setenv("IMMU_REGISTRY_USERNAME", USER)
    monkeypatch.setenv("IMMU_REGISTRY_PASSWORD", PASSWORD)


def docker_config(*hosts: str) -> Path:
    """A throw-away Docker config dir logged in (``docker login``) to ``hosts``."""
    path = Path(tempfile.mkdtemp(prefix="immu-docker-config-"))
    for host in hosts:
        done = subprocess.run(["docker", "--config", str(path), "login", "-u", USER,
                               "--password-stdin", host], input=PASSWORD, text=True,
                              capture_output=True, check=False)
        if done.returncode != 0:  # old CLIs without loopback login: write what login writes
            auths = {host: {"auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}}
            (path / "config.json").write_text(json.dumps({"auths": auths}))
    return path


@dataclass(frozen=True)
class Pushed:
    """An image pushed to a registry: ``repository@digest`` and the local image ID."""

    repository: str
    tag: str
    digest: str
    image_id: str

    @property
    def by_digest(self) -> str:
        return f"{self.repository}@{self.digest}"


def build_and_push(host: str, repo: str, tag: str, files: dict[str, bytes],
                   config_dir: Path, layers: int = 1) -> Pushed:
    """Build ``FROM scratch`` with ``files`` (one COPY per layer group), push, drop locally."""
    ctx = Path(tempfile.mkdtemp(prefix="immu-ctx-"))
    names = sorted(files)
    lines = ["FROM scratch", f"LABEL {LABEL}"]
    for i, name in enumerate(names):
        (ctx / name).write_bytes(files[name])
        if i < layers:
            lines.append(f"COPY {name} /data/{name}")
    if len(names) > layers:
        lines.append("COPY . /rest/")
    (ctx / "Dockerfile").write_text("\n".join(lines) + "\n")
    ref = f"{host}/{repo}:{tag}"
    try:
        for cmd in (["docker", "build", "-q", "-t", ref, str(ctx)],
                    ["docker", "--config", str(config_dir), "push", ref]):
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                pytest.fail(f"{' '.join(cmd)} failed:\n{done.stderr}")
        image_id = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", ref],
                                  capture_output=True, text=True, check=True).stdout.strip()
        match = re.search(r"digest: (sha256:[0-9a-f]{64})", done.stdout)
        assert match, done.stdout
        return Pushed(repository=f"{host}/{repo}", tag=tag, digest=match.group(1),
                      image_id=image_id)
    finally:
        subprocess.run(["docker", "rmi", "-f", ref], capture_output=True, check=False)
        shutil.rmtree(ctx, ignore_errors=True)


@pytest.fixture(scope="session")
def pushed_images(registry: Registry) -> Iterator[list[Pushed]]:
    """Three small, distinct images pushed to ``immu-test/app`` (for promote and rollback)."""
    config_dir = docker_config(registry.host)
    try:
        yield [build_and_push(registry.host, "immu-test/app", f"build-{i}",
                              {f"f{i}.txt": f"content {i}\n".encode(), "common.txt": b"x" * 5000},
                              config_dir) for i in range(3)]
    finally:
        shutil.rmtree(config_dir, ignore_errors=True)
