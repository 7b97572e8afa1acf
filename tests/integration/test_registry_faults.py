"""Retries, auth and integrity failures, injected by a proxy in front of the real registry."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from immu_action.adapters.registry.auth import Credentials
from immu_action.adapters.registry.client import RegistryClient
from immu_action.adapters.registry.history import trace
from immu_action.adapters.registry.promotion import Registries, promote
from immu_action.adapters.registry.retry import RetryPolicy
from immu_action.errors import RegistryError
from tests.support import registry as support
from tests.support.faultproxy import FaultProxy, Rule
from tests.support.registry import PASSWORD, USER, Pushed, Registry

registry, pushed_images = support.registry, support.pushed_images
pytestmark = [pytest.mark.registry, pytest.mark.docker]
ROOT = Path(__file__).resolve().parents[2]


class Sleeps(list[float]):
    """An injected sleep that records instead of waiting (the requests stay real)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def via(proxy: FaultProxy, sleeps: Sleeps, password: str = PASSWORD) -> Registries:
    client = RegistryClient(proxy.host, credentials=Credentials(username=USER, password=password),
                            sleep=sleeps)
    return Registries(clients={proxy.host: client})


def source(proxy: FaultProxy, image: Pushed) -> str:
    return f"{proxy.host}/immu-test/app@{image.digest}"


def test_500_then_201_is_retried(registry: Registry, pushed_images: list[Pushed]) -> None:
    sleeps = Sleeps()
    with FaultProxy(registry.port) as proxy:
        proxy.add(Rule(method="PUT", path=r"/manifests/fault-500$", status=500))
        result = promote(source(proxy, pushed_images[0]), ["fault-500"],
                         registries=via(proxy, sleeps), audit=False)
        assert proxy.count("PUT", r"/manifests/fault-500$") == 2
    assert result.tags[0].written and sleeps == [0.5]


def test_429_with_retry_after_is_honoured(registry: Registry,
                                          pushed_images: list[Pushed]) -> None:
    sleeps = Sleeps()
    with FaultProxy(registry.port) as proxy:
        proxy.add(Rule(method="GET", path=r"/manifests/sha256:", status=429,
                       headers={"Retry-After": "2"}, times=2))
        promote(source(proxy, pushed_images[0]), ["fault-429"], registries=via(proxy, sleeps),
                audit=False)
        statuses = [s.status for s in proxy.seen if s.method == "GET" and s.status != 401]
    assert statuses == [429, 429, 200] and sleeps == [2.0, 2.0]


def test_retries_are_bounded_in_count_and_total_wait(registry: Registry,
                                                     pushed_images: list[Pushed]) -> None:
    with FaultProxy(registry.port) as proxy:
        proxy.add(Rule(method="GET", path=r"/manifests/", status=503, times=100))
        sleeps = Sleeps()
        with pytest.raises(RegistryError, match="gave up"):
            promote(source(proxy, pushed_images[0]), ["x"], registries=via(proxy, sleeps))
        tries = [s for s in proxy.seen if s.method == "GET" and s.status == 503]
        assert len(tries) == RetryPolicy().attempts
        assert sleeps == [0.5, 1.0, 2.0, 4.0]
        proxy.reset()
        proxy.add(Rule(method="GET", path=r"/manifests/", status=429, times=100,
                       headers={"Retry-After": "1000"}))
        sleeps = Sleeps()
        with pytest.raises(RegistryError, match="gave up"):
            promote(source(proxy, pushed_images[0]), ["x"], registries=via(proxy, sleeps))
    assert sleeps == [30.0, 30.0, 30.0] and sum(sleeps) <= RetryPolicy().max_total_s


def test_unreachable_registry_fails_after_bounded_tries() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    sleeps = Sleeps()
    client = RegistryClient(f"127.0.0.1:{port}", credentials=None, sleep=sleeps)
    with pytest.raises(RegistryError, match="failed after 5 tries: ConnectionError"):
        client.head_manifest("immu-test/app", "latest")
    assert len(sleeps) == 4


def test_forbidden_write_is_final_and_names_the_repository(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    sleeps = Sleeps()
    with FaultProxy(registry.port) as proxy:
        proxy.add(Rule(method="PUT", path=r"/manifests/", status=403, times=10))
        with pytest.raises(RegistryError) as failed:
            promote(source(proxy, pushed_images[0]), ["denied"], registries=via(proxy, sleeps))
        # The tag and its audit record are written together; each PUT is tried once only.
        assert proxy.count("PUT", r"/manifests/") == 2
    message = str(failed.value)
    assert "push to repository 'immu-test/app'" in message and "docker login" in message
    assert sleeps == [] and PASSWORD not in message


def test_manifest_digest_mismatch_aborts_the_promotion(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    with FaultProxy(registry.port) as proxy:
        proxy.add(Rule(method="GET", path=r"/manifests/sha256:", corrupt=True, times=10))
        with pytest.raises(RegistryError, match="digest mismatch"):
            promote(source(proxy, pushed_images[0]), ["corrupt"], registries=via(proxy, Sleeps()))
        assert proxy.count("PUT") == 0
    assert registry.client().head_manifest("immu-test/app", "corrupt") is None


def test_refused_mount_falls_back_to_a_streamed_copy(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    with FaultProxy(registry.port) as proxy:
        # The registry answers 202 (an upload session) instead of 201, as when it declines.
        proxy.add(Rule(method="POST", path=r"\?mount=", strip_query=True, times=100))
        result = promote(source(proxy, pushed_images[1]), ["immu-test/no-mount:v1"],
                         registries=via(proxy, Sleeps()), audit=False)
        streamed = [s for s in proxy.seen if s.method == "PUT" and "/blobs/uploads/" in s.path]
    copy = result.tags[0].copy
    assert copy["blobs_mounted"] == 0 and copy["blobs_streamed"] == len(streamed) >= 2
    assert sum(s.body_bytes for s in streamed) == copy["bytes_streamed"] > 0
    assert registry.client().head_manifest("immu-test/no-mount", "v1") == pushed_images[1].digest


def test_wrong_password_is_a_clear_error_without_the_secret(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    secret = "not-the-password-0451"
    client = RegistryClient(registry.host, credentials=Credentials(username=USER, password=secret))
    with pytest.raises(RegistryError) as failed:
        client.get_manifest("immu-test/app", pushed_images[0].digest)
    assert "'immu-test/app'" in str(failed.value) and secret not in str(failed.value)
    assert secret not in repr(client) and secret not in repr(client.transport.credentials)
    done = run_cli(["promote", "--json", pushed_images[0].by_digest, "never"],
                   {"IMMU_REGISTRY_USERNAME": USER, "IMMU_REGISTRY_PASSWORD": secret})
    assert done.returncode == 4 and "docker login" in done.stderr
    assert secret not in done.stderr + done.stdout
    assert json.loads(done.stdout)["error"]["type"] == "RegistryError"


def test_bearer_token_flow_with_refresh(registry: Registry,
                                        pushed_images: list[Pushed]) -> None:
    with FaultProxy(registry.port, bearer=(USER, PASSWORD)) as proxy:
        pool = via(proxy, Sleeps())
        result = promote(source(proxy, pushed_images[0]), ["bearer"], registries=pool)
        assert result.tags[0].written and result.tags[0].record
        # One pull,push token serves the reads and the writes (the client announced them).
        assert proxy.token_requests == ["repository:immu-test/app:pull,push"]
        asked = len(proxy.token_requests)
        proxy.expire_tokens()
        traced = trace(f"{proxy.host}/immu-test/app:bearer", registries=pool)
        assert traced.digest == pushed_images[0].digest and len(traced.records) == 1
        assert len(proxy.token_requests) == asked + 1  # one refresh, then the cache serves
        asked = len(proxy.token_requests)
        fresh = via(proxy, Sleeps())
        promote(source(proxy, pushed_images[0]), ["immu-test/bearer-mount:v1"], registries=fresh)
        # One token for the whole cross-repository promotion: pull on the source (the GET
        # and the mounts' from=) and push on the target, not one fetch per scope.
        assert proxy.token_requests[asked:] == [
            "repository:immu-test/app:pull repository:immu-test/bearer-mount:pull,push"]
        with pytest.raises(RegistryError, match="token service refused") as failed:
            trace(f"{proxy.host}/immu-test/app:bearer", registries=via(proxy, Sleeps(), "bad-pw"))
    assert "bad-pw" not in str(failed.value)


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``immu ARGS`` in a subprocess, as a user runs it (main's single error handler)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("IMMU_REGISTRY_")}
    return subprocess.run([sys.executable, "-m", "immu_action", *args], capture_output=True,
                          text=True, cwd=ROOT, env={**full, **env}, check=False, timeout=120)


def test_cli_uses_docker_config_credentials_and_prints_json(
        registry: Registry, pushed_images: list[Pushed], tmp_path: Path) -> None:
    config = support.docker_config(registry.host)
    try:
        _cli_with_docker_config(registry, pushed_images, tmp_path, config)
    finally:
        shutil.rmtree(config, ignore_errors=True)


def _cli_with_docker_config(registry: Registry, pushed_images: list[Pushed], tmp_path: Path,
                            config: Path) -> None:
    env = {"DOCKER_CONFIG": str(config), "GITHUB_SHA": "c" * 40}
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"totals": {"tests": 4, "passed": 4, "failed": 0}}))
    tag = f"cli-{os.getpid()}"
    done = run_cli(["promote", "--json", "--results-json", str(results),
                    pushed_images[1].by_digest, tag, "latest-cli"], env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert [t["written"] for t in out["tags"]] == [True, True]
    traced = run_cli(["trace", "--json", f"{registry.host}/immu-test/app:{tag}"], env)
    got = json.loads(traced.stdout)
    assert got["digest"] == pushed_images[1].digest and got["commit"] == "c" * 40
    assert got["tests"]["passed"] == 4
    refused = run_cli(["promote", pushed_images[2].by_digest, tag], env)
    assert refused.returncode == 3 and tag in refused.stderr
    bad = run_cli(["promote", "no-host/app@sha256:" + "0" * 64, "x"], env)
    assert bad.returncode == 2 and "name the registry host" in bad.stderr
    bad_tag = run_cli(["promote", pushed_images[2].by_digest, "bad!tag"], env)
    assert bad_tag.returncode == 2 and "must match" in bad_tag.stderr


@pytest.mark.parametrize("after_forward", [False, True])
def test_a_failed_blob_upload_starts_a_new_session(
        registry: Registry, pushed_images: list[Pushed], after_forward: bool) -> None:
    # after_forward: the registry finished the upload but the client saw a 502 (a gateway
    # timeout); re-sending into that session would meet 404 BLOB_UPLOAD_UNKNOWN.
    sleeps = Sleeps()
    with FaultProxy(registry.port) as proxy:
        proxy.add(Rule(method="POST", path=r"\?mount=", strip_query=True, times=100))
        proxy.add(Rule(method="PUT", path=r"/blobs/uploads/", status=502,
                       after_forward=after_forward))
        target = f"immu-test/session-{str(after_forward).lower()}:v1"
        result = promote(source(proxy, pushed_images[0]), [target],
                         registries=via(proxy, sleeps), audit=False)
        sessions = proxy.count("POST", r"/blobs/uploads/")
        blobs = _blob_total(registry, pushed_images[0])
    assert result.tags[0].written and sleeps == [0.5]
    assert sessions == blobs + 1  # one blob needed a second upload session


def test_an_upload_that_keeps_failing_is_a_clear_error(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    sleeps = Sleeps()
    with FaultProxy(registry.port) as proxy:
        proxy.add(Rule(method="POST", path=r"\?mount=", strip_query=True, times=100))
        proxy.add(Rule(method="PUT", path=r"/blobs/uploads/", status=400, times=100))
        with pytest.raises(RegistryError, match=r"upload of sha256:\w+ failed \(HTTP 400 "
                                                r"INJECTED: fault proxy\) after 1 upload"):
            promote(source(proxy, pushed_images[0]), ["immu-test/session-bad:v1"],
                    registries=via(proxy, sleeps), audit=False)
    assert sleeps == []  # a 400 is not retried


def _blob_total(registry: Registry, image: Pushed) -> int:
    doc = json.loads(registry.client().get_manifest("immu-test/app", image.digest).data)
    return 1 + len(doc["layers"])


def test_a_put_without_its_digest_header_is_checked_by_a_head(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    with FaultProxy(registry.port) as proxy:
        proxy.add(Rule(method="PUT", path=r"/manifests/no-digest-header$",
                       drop_headers=("Docker-Content-Digest",)))
        result = promote(source(proxy, pushed_images[0]), ["no-digest-header"],
                         registries=via(proxy, Sleeps()), audit=False)
        heads = proxy.count("HEAD", r"/manifests/no-digest-header$")
    assert result.tags[0].written and heads == 2  # the immutability check, then the proof
