"""Where credentials come from, as ``docker login`` leaves them: credential helpers
(``credsStore``/``credHelpers``, spoken to over the real helper protocol and filled by the real
Docker CLI) and identity tokens (the refresh token a token service hands ``docker login``,
traded through the OAuth2 form). Real registries, real ``docker login``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from immu_action.adapters.registry import auth as registry_auth
from immu_action.adapters.registry.auth import load_credentials
from immu_action.adapters.registry.client import RegistryClient
from immu_action.adapters.registry.promotion import Registries, promote
from immu_action.adapters.registry.retry import RetryPolicy
from immu_action.errors import BadInput, RegistryError
from tests.support import registry as support
from tests.support.faultproxy import FaultProxy, Rule
from tests.support.registry import PASSWORD, USER, Pushed, Registry, build_and_push
from tests.support.token_server import SERVERS, start_token_registry

registry, pushed_images = support.registry, support.pushed_images
pytestmark = [pytest.mark.registry, pytest.mark.docker]

# A credential helper as Docker specifies them: `docker-credential-<name> store|get|erase|list`,
# JSON on stdin/stdout, "credentials not found in native keychain" when it has none. This one
# keeps its store in a JSON file ($IMMU_HELPER_STORE) and logs each action ($IMMU_HELPER_LOG).
HELPER = '''#!{python}
import json, os, sys, time
store, log = os.environ["IMMU_HELPER_STORE"], os.environ.get("IMMU_HELPER_LOG")
action = sys.argv[1]
if log:
    with open(log, "a") as f:
        f.write(action + "\\n")
mode = os.environ.get("IMMU_HELPER_MODE", "")
if mode == "hang":
    time.sleep(60)
if mode == "garbage" and action == "get":
    print("not json"); sys.exit(0)
data = json.load(open(store)) if os.path.exists(store) else {{}}
given = sys.stdin.read().strip()
if action == "store":
    entry = json.loads(given)
    data[entry["ServerURL"]] = {{"Username": entry["Username"], "Secret": entry["Secret"]}}
    json.dump(data, open(store, "w"))
elif action == "get":
    if given not in data:
        print("credentials not found in native keychain"); sys.exit(1)
    print(json.dumps({{"ServerURL": given, **data[given]}}))
elif action == "erase":
    data.pop(given, None); json.dump(data, open(store, "w"))
elif action == "list":
    print(json.dumps({{url: e["Username"] for url, e in data.items()}}))
'''


class Helper:
    """The helper installed as ``docker-credential-<name>`` in a PATH directory of its own."""

    def __init__(self, root: Path, name: str) -> None:
        self.name, self.bin = name, root / "bin"
        self.store, self.log = root / f"{name}.json", root / f"{name}.log"
        self.bin.mkdir(exist_ok=True)
        program = self.bin / f"docker-credential-{name}"
        program.write_text(HELPER.format(python=sys.executable))
        program.chmod(0o755)

    def env(self, config: Path, **extra: str) -> dict[str, str]:
        return {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}",
                "DOCKER_CONFIG": str(config), "IMMU_HELPER_STORE": str(self.store),
                "IMMU_HELPER_LOG": str(self.log), **extra}

    def actions(self) -> list[str]:
        return self.log.read_text().split() if self.log.exists() else []


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="immu-creds-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def docker_login(host: str, config: Path, env: dict[str, str]) -> None:
    done = subprocess.run(["docker", "--config", str(config), "login", "-u", USER,
                           "--password-stdin", host], input=PASSWORD, text=True,
                          capture_output=True, env=env, check=False, timeout=60)
    assert done.returncode == 0, done.stderr


def write_config(config: Path, doc: dict[str, object]) -> None:
    config.mkdir(exist_ok=True)
    (config / "config.json").write_text(json.dumps(doc))


def promote_with(host: str, env: dict[str, str], source: str, tag: str) -> str:
    creds = load_credentials(host, env)
    assert creds is not None
    client = RegistryClient(host, credentials=creds)
    result = promote(source, [tag], registries=Registries(clients={host: client}), audit=False)
    assert result.tags[0].written
    return creds.source


def test_creds_store_filled_by_docker_login_is_asked(
        registry: Registry, pushed_images: list[Pushed], home: Path) -> None:
    helper, config = Helper(home, "immutest"), home / "config"
    write_config(config, {"credsStore": "immutest"})
    env = helper.env(config)
    docker_login(registry.host, config, env)
    stored = json.loads((config / "config.json").read_text())
    assert stored["auths"][registry.host] == {}, "docker kept the password in the file"
    assert "store" in helper.actions()
    source = promote_with(registry.host, env, pushed_images[0].by_digest, "helper")
    assert source.startswith("docker-credential-immutest") and "get" in helper.actions()


def test_cred_helpers_entry_for_the_host_wins_over_creds_store(
        registry: Registry, pushed_images: list[Pushed], home: Path) -> None:
    per_host, default = Helper(home, "perhost"), Helper(home, "default")
    config = home / "config"
    write_config(config, {"credHelpers": {registry.host: "perhost"}})
    env = per_host.env(config)  # both helpers are on its PATH
    docker_login(registry.host, config, env)
    write_config(config, {"credHelpers": {registry.host: "perhost"}, "credsStore": "default"})
    promote_with(registry.host, env, pushed_images[0].by_digest, "per-host")
    assert "get" in per_host.actions() and default.actions() == []


def test_a_helper_without_the_host_falls_back_to_auths(
        registry: Registry, pushed_images: list[Pushed], home: Path) -> None:
    helper = Helper(home, "empty")
    config = support.docker_config(registry.host)  # auths written by a real docker login
    try:
        doc = json.loads((config / "config.json").read_text())
        write_config(config, {**doc, "credsStore": "empty"})
        source = promote_with(registry.host, helper.env(config), pushed_images[0].by_digest,
                              "fallback")
    finally:
        shutil.rmtree(config, ignore_errors=True)
    assert source == str(config / "config.json") and "get" in helper.actions()


@pytest.mark.parametrize(("mode", "message"), [
    ("missing", "docker-credential-nowhere is not on PATH"),
    ("hang", "did not answer `list` within 1s"),
    ("garbage", "did not answer JSON with Username and Secret"),
])
def test_a_broken_helper_is_a_clear_error(registry: Registry, home: Path, mode: str,
                                          message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_auth, "HELPER_TIMEOUT_S", 1.0)
    helper, config = Helper(home, "broken"), home / "config"
    write_config(config, {"credsStore": "nowhere" if mode == "missing" else "broken"})
    (helper.store).write_text(json.dumps({registry.host: {"Username": USER,
                                                          "Secret": PASSWORD}}))
    with pytest.raises(BadInput, match=message) as failed:
        load_credentials(registry.host, helper.env(config, IMMU_HELPER_MODE=mode))
    assert str(config / "config.json") in str(failed.value) and PASSWORD not in str(failed.value)


@pytest.fixture(scope="module")
def token_registry() -> Registry:
    return start_token_registry("token-creds")


@pytest.fixture(scope="module")
def token_image(token_registry: Registry) -> Pushed:
    config = Path(tempfile.mkdtemp(prefix="immu-token-push-"))
    try:
        docker_login(token_registry.host, config, dict(os.environ))
        return build_and_push(token_registry.host, "immu-test/idt", "build-1",
                              {"f.txt": f"identity {uuid.uuid4()}\n".encode()}, config)
    finally:
        shutil.rmtree(config, ignore_errors=True)


def test_identity_token_from_docker_login_is_traded_by_oauth2(
        token_registry: Registry, token_image: Pushed, home: Path) -> None:
    config = home / "config"
    docker_login(token_registry.host, config, dict(os.environ))
    entry = json.loads((config / "config.json").read_text())["auths"][token_registry.host]
    assert entry.get("identitytoken"), entry  # docker kept a refresh token, not the password
    server = SERVERS["token-creds"]
    before = list(server.grants)
    source = promote_with(token_registry.host, {"DOCKER_CONFIG": str(config)},
                          token_image.by_digest, "oauth")
    assert source.endswith("(identitytoken)")
    assert server.grants[len(before):] == ["refresh_token"]


def test_identity_token_through_a_credential_helper(
        token_registry: Registry, token_image: Pushed, home: Path) -> None:
    helper, config = Helper(home, "idt"), home / "config"
    write_config(config, {"credsStore": "idt"})
    env = helper.env(config)
    docker_login(token_registry.host, config, env)
    stored = json.loads(helper.store.read_text())[token_registry.host]
    assert stored["Username"] == "<token>"  # the helper protocol's mark of an identity token
    server = SERVERS["token-creds"]
    before = len(server.grants)
    promote_with(token_registry.host, env, token_image.by_digest, "oauth-helper")
    assert server.grants[before:] == ["refresh_token"]


def test_a_revoked_identity_token_is_a_clear_error(
        token_registry: Registry, token_image: Pushed, home: Path) -> None:
    config = home / "config"
    docker_login(token_registry.host, config, dict(os.environ))
    entry = json.loads((config / "config.json").read_text())["auths"][token_registry.host]
    SERVERS["token-creds"].refresh_tokens.pop(entry["identitytoken"])
    creds = load_credentials(token_registry.host, {"DOCKER_CONFIG": str(config)})
    client = RegistryClient(token_registry.host, credentials=creds)
    with pytest.raises(RegistryError, match="refused the identity token") as failed:
        client.head_manifest("immu-test/idt", token_image.digest)
    assert "docker login" in str(failed.value)
    assert entry["identitytoken"] not in str(failed.value)


def test_token_service_failures_are_retried(registry: Registry,
                                            pushed_images: list[Pushed]) -> None:
    waits: list[float] = []
    with FaultProxy(registry.port, bearer=(USER, PASSWORD)) as proxy:
        proxy.add(Rule(method="GET", path=r"^/token", status=503, times=2))
        client = RegistryClient(proxy.host, credentials=load_credentials(
            proxy.host, {"IMMU_REGISTRY_USERNAME": USER, "IMMU_REGISTRY_PASSWORD": PASSWORD}),
            sleep=waits.append)
        digest = pushed_images[0].digest
        assert client.head_manifest("immu-test/app", digest) == digest
        assert waits == [0.5, 1.0] and len(proxy.token_requests) == 1
        proxy.add(Rule(method="GET", path=r"^/token", status=503, times=10))
        proxy.expire_tokens()
        stubborn = RegistryClient(proxy.host, credentials=client.transport.credentials,
                                  retry=RetryPolicy(attempts=3, base_s=0.0), sleep=waits.append)
        with pytest.raises(RegistryError, match="answered HTTP 503 3 times"):
            stubborn.head_manifest("immu-test/app", digest)
