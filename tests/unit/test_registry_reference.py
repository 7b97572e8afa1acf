"""Pure parts of the registry adapter: references, auth parsing, credentials, retry delays."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from immu_action.adapters.registry.auth import (
    Credentials,
    load_credentials,
    merge_scopes,
    parse_challenge,
    scope_covers,
)
from immu_action.adapters.registry.http import Transport, is_loopback
from immu_action.adapters.registry.retry import RetryPolicy
from immu_action.core.manifests import DOCKER_LIST, DOCKER_MANIFEST, config_digest, verify_digest
from immu_action.core.references import parse_reference
from immu_action.errors import BadInput, RegistryError

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(("text", "host", "repo", "tag", "digest"), [
    ("registry.example.com/team/app:1.0", "registry.example.com", "team/app", "1.0", None),
    (f"localhost:5000/app@{DIGEST}", "localhost:5000", "app", None, DIGEST),
    (f"127.0.0.1:5000/a/b/c:t@{DIGEST}", "127.0.0.1:5000", "a/b/c", "t", DIGEST),
    ("[::1]:5000/app", "[::1]:5000", "app", None, None),
])
def test_parse_reference(text: str, host: str, repo: str, tag: str | None,
                         digest: str | None) -> None:
    ref = parse_reference(text)
    assert (ref.host, ref.repository, ref.tag, ref.digest) == (host, repo, tag, digest)
    assert str(ref) == text


def test_default_host_applies_to_bare_repositories() -> None:
    assert parse_reference("other/repo:x", default_host="h:1").host == "h:1"


@pytest.mark.parametrize(("text", "message"), [
    ("team/app:1", "name the registry host"),
    ("r.example.com/Team/App:1", "must be lowercase"),
    ("r.example.com/app@sha256:xyz", "sha256:<64 hex>"),
    ("r.example.com/app:.bad", "must match"),
])
def test_bad_references_say_what_is_valid(text: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        parse_reference(text)


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost:5000", True), ("127.0.0.1:5000", True), ("127.9.9.9", True),
    ("[::1]:5000", True), ("::1", True), ("10.0.0.1:5000", False),
    ("registry.example.com", False), ("localhost.example.com", False),
])
def test_plain_http_only_for_loopback_unless_insecure(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    assert Transport(host, credentials=None).scheme == ("http" if loopback else "https")
    assert Transport(host, credentials=None, insecure=True).scheme == "http"


def test_parse_bearer_challenge() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example.com/token",service="reg",'
        'scope="repository:a/b:pull,push"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example.com/token", "service": "reg",
                      "scope": "repository:a/b:pull,push"}
    assert parse_challenge('Basic realm="x"') == ("basic", {"realm": "x"})


def test_retry_delay_is_exponential_and_capped() -> None:
    policy = RetryPolicy(base_s=0.5, max_wait_s=10)
    assert [policy.delay(n, None) for n in (1, 2, 3, 6)] == [0.5, 1.0, 2.0, 10.0]
    assert policy.delay(1, 3.0) == 3.0 and policy.delay(1, 500.0) == 10.0


def test_credentials_never_show_the_secret() -> None:
    creds = Credentials(username="u", password="hunter2-secret")
    assert "hunter2-secret" not in repr(creds) + str(creds)
    assert "hunter2-secret" not in repr(Transport("h.example.com", credentials=creds))


def _config(tmp_path: Path, auths: dict[str, object]) -> dict[str, str]:
    (tmp_path / "config.json").write_text(json.dumps({"auths": auths}))
    return {"DOCKER_CONFIG": str(tmp_path)}


def test_credentials_from_docker_config_auth_and_fields(tmp_path: Path) -> None:
    auth = base64.b64encode(b"me:pw:with:colons").decode()
    env = _config(tmp_path, {"https://r.example.com/v1/": {"auth": auth},
                             "other.example.com:5000": {"username": "x", "password": "y"}})
    got = load_credentials("r.example.com", env)
    assert got is not None and (got.username, got.password) == ("me", "pw:with:colons")
    other = load_credentials("other.example.com:5000", env)
    assert other is not None and other.password == "y"
    assert load_credentials("nothing.example.com", env) is None


@pytest.mark.parametrize("host", ["docker.io", "index.docker.io", "registry-1.docker.io"])
def test_docker_hub_is_one_registry_under_its_names(tmp_path: Path, host: str) -> None:
    auth = base64.b64encode(b"hubuser:hubtoken").decode()
    # The key `docker login` (no server) writes for Docker Hub.
    env = _config(tmp_path, {"https://index.docker.io/v1/": {"auth": auth}})
    got = load_credentials(host, env)
    assert got is not None and got.username == "hubuser"
    transport = Transport(host, credentials=None)
    assert transport.url("/v2/library/alpine/manifests/3") \
        == "https://registry-1.docker.io/v2/library/alpine/manifests/3"
    ref = parse_reference(f"{host}/alpine@{DIGEST}")
    assert (ref.host, ref.repository) == (host, "library/alpine")  # official images
    assert parse_reference(f"{host}/acme/app:1").repository == "acme/app"
    assert load_credentials("quay.io", env) is None
    assert Transport("quay.io", credentials=None).url("/v2/") == "https://quay.io/v2/"


def test_environment_wins_and_must_be_complete(tmp_path: Path) -> None:
    env = {**_config(tmp_path, {}), "IMMU_REGISTRY_USERNAME": "a", "IMMU_REGISTRY_PASSWORD": "b"}
    got = load_credentials("r.example.com", env)
    assert got is not None and got.username == "a"
    with pytest.raises(BadInput, match="both"):
        load_credentials("r.example.com", {"IMMU_REGISTRY_USERNAME": "a"})


def test_broken_docker_config_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{nope")
    with pytest.raises(BadInput, match=r"config\.json"):
        load_credentials("r.example.com", {"DOCKER_CONFIG": str(tmp_path)})


def test_digest_verification_and_config_digest() -> None:
    manifest = json.dumps({"schemaVersion": 2, "config": {"digest": DIGEST}}).encode()
    with pytest.raises(RegistryError, match="digest mismatch"):
        verify_digest(manifest, DIGEST, "x")
    assert config_digest(manifest, DOCKER_MANIFEST) == DIGEST
    with pytest.raises(RegistryError, match="not an index"):
        config_digest(manifest, DOCKER_LIST)


def test_scopes_merge_per_repository_and_cover_what_they_ask() -> None:
    merged = merge_scopes(["repository:a/b:pull", "repository:c:pull,push",
                           "repository:a/b:push", "registry:catalog:*",
                           "repository:host:5000/x:pull"])
    assert merged == ("registry:catalog:*", "repository:a/b:pull,push",
                      "repository:c:pull,push", "repository:host:5000/x:pull")
    assert scope_covers(merged, ["repository:a/b:pull"])
    assert scope_covers(merged, ["repository:c:push", "repository:a/b:pull"])
    assert scope_covers(merged, ["registry:catalog:*"])
    assert not scope_covers(merged, ["repository:host:5000/x:push"])
    assert not scope_covers(merged, ["repository:d:pull"])
    assert not scope_covers(["repository:a/b:pull"], ["registry:catalog:*"])
