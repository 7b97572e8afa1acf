"""Promotion against a token-auth registry (the Bearer flow of GHCR, Docker Hub, ECR, Harbor).

Debian's real ``docker-registry`` in token mode (``scripts/registry.sh`` with
``IMMU_REGISTRY_AUTH=token``) trusting ``tests/support/token_server.py``; the image is pushed
by the real Docker engine after a real ``docker login``, so every client meets the same flow.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from immu_action.adapters.registry.auth import Credentials
from immu_action.adapters.registry.client import RegistryClient
from immu_action.adapters.registry.promotion import Provenance, Registries, promote
from immu_action.errors import RegistryError
from tests.support.faultproxy import FaultProxy
from tests.support.registry import PASSWORD, ROOT, USER, Pushed, Registry, build_and_push
from tests.support.token_server import SERVERS, start_token_registry

pytestmark = [pytest.mark.registry, pytest.mark.docker]


@pytest.fixture(scope="module")
def token_registry() -> Registry:
    return start_token_registry("token")


@pytest.fixture(scope="module")
def docker_login(token_registry: Registry) -> Iterator[Path]:
    """A throw-away Docker config after a real ``docker login`` through the token server."""
    path = Path(tempfile.mkdtemp(prefix="immu-docker-config-"))
    try:
        done = subprocess.run(["docker", "--config", str(path), "login", "-u", USER,
                               "--password-stdin", token_registry.host], input=PASSWORD,
                              text=True, capture_output=True, check=False)
        assert done.returncode == 0, done.stderr
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def image(token_registry: Registry, docker_login: Path) -> Pushed:
    return build_and_push(token_registry.host, "immu-test/tok", "build-1",
                          {"f.txt": f"token {uuid.uuid4()}\n".encode()}, docker_login)


def test_same_repo_promotion_is_get_head_put_after_token_auth(
        token_registry: Registry, image: Pushed) -> None:
    with FaultProxy(token_registry.port) as proxy:
        client = token_registry.client()
        client.transport.host = proxy.host  # the token realm is reached directly
        before = token_registry.log_lines()
        result = promote(image.by_digest.replace(token_registry.host, proxy.host), ["v1"],
                         registries=Registries(clients={proxy.host: client}), audit=False)
        challenges = [s for s in proxy.seen if s.status == 401]
        after_auth = [(s.method, s.path.split("/")[-2]) for s in proxy.seen if s.status != 401]
    assert result.tags[0].written and result.digest == image.digest
    assert challenges, "the registry never asked for a token: not in token mode"
    # One probe meets the 401 while the concurrent HEAD waits for its token; the write
    # uses the pull,push token fetched then, without a challenge of its own.
    assert len(challenges) == 1 and challenges[0].method in ("GET", "HEAD")
    assert sorted(after_auth[:2]) == [("GET", "manifests"), ("HEAD", "manifests")]
    assert after_auth[2:] == [("PUT", "manifests")]
    assert token_registry.blob_uploads_since(before) == []
    assert token_registry.client().head_manifest("immu-test/tok", "v1") == image.digest


def test_promotion_writes_the_audit_record_with_a_token(
        token_registry: Registry, image: Pushed) -> None:
    result = promote(image.by_digest, ["audited"],
                     registries=Registries(clients={token_registry.host: token_registry.client()}),
                     provenance=Provenance(commit="b" * 40, run_url="https://ci/run/7",
                                           tests={"tests": 1, "passed": 1}))
    record = result.tags[0].record
    assert record is not None
    doc = json.loads(token_registry.client().get_manifest("immu-test/tok", record).data)
    assert doc["subject"]["digest"] == image.digest
    assert json.loads(doc["annotations"]["io.immu.record"])["run_url"] == "https://ci/run/7"


def test_wrong_password_is_refused_by_the_token_server(
        token_registry: Registry, image: Pushed) -> None:
    client = RegistryClient(token_registry.host,
                            credentials=Credentials(username=USER, password="wrong"))
    with pytest.raises(RegistryError, match="token service refused the credentials"):
        promote(image.by_digest, ["never"],
                registries=Registries(clients={token_registry.host: client}), audit=False)


@pytest.mark.parametrize(("env", "message"), [
    ({"IMMU_REGISTRY_AUTH": "token"}, "needs IMMU_REGISTRY_TOKEN_REALM"),
    ({"IMMU_REGISTRY_AUTH": "token", "IMMU_REGISTRY_TOKEN_REALM": "ftp://x"},
     "got 'ftp://x'"),
    ({"IMMU_REGISTRY_AUTH": "ldap"}, "must be htpasswd or token (got 'ldap')"),
])
def test_registry_script_rejects_a_bad_auth_mode(env: dict[str, str], message: str,
                                                 tmp_path: Path) -> None:
    done = subprocess.run([str(ROOT / "scripts" / "registry.sh"), "start", "bad", "1"],
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                               "IMMU_REGISTRY_ROOT": str(tmp_path), **env},
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / "bad" / "pid").exists()


def test_push_the_token_service_does_not_grant_is_a_clear_refusal(
        token_registry: Registry, image: Pushed) -> None:
    server = SERVERS["token"]
    server.read_only.add("immu-test/locked")  # the token says pull only, without an error
    try:
        with pytest.raises(RegistryError, match="not allowed to push to repository "
                                                "'immu-test/locked'") as failed:
            promote(image.by_digest, ["immu-test/locked:v1"], audit=False,
                    registries=Registries(clients={token_registry.host: token_registry.client()}))
    finally:
        server.read_only.discard("immu-test/locked")
    assert PASSWORD not in str(failed.value)
    assert token_registry.client().head_manifest("immu-test/locked", "v1") is None
