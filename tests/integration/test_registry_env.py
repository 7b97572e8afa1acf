"""What the registry client takes from the environment, against the real registry:
HTTP(S)_PROXY/NO_PROXY (read once per origin, not per request) and never ~/.netrc."""

from __future__ import annotations

from pathlib import Path

import pytest

from immu_action.adapters.registry.auth import Credentials
from immu_action.adapters.registry.client import RegistryClient
from immu_action.adapters.registry.retry import RetryPolicy
from immu_action.errors import RegistryError
from tests.support import registry as support
from tests.support.faultproxy import FaultProxy
from tests.support.registry import PASSWORD, USER, Pushed, Registry

registry, pushed_images = support.registry, support.pushed_images
pytestmark = [pytest.mark.registry, pytest.mark.docker]


def client(host: str, password: str = PASSWORD) -> RegistryClient:
    return RegistryClient(host, credentials=Credentials(username=USER, password=password),
                          retry=RetryPolicy(attempts=2, base_s=0.0))


def _clear_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_http_proxy_from_the_environment_carries_the_requests(
        registry: Registry, pushed_images: list[Pushed], monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_proxies(monkeypatch)
    with FaultProxy(registry.port) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://{proxy.host}")
        through = client(registry.host)
        assert through.head_manifest("immu-test/app", pushed_images[0].digest) \
            == pushed_images[0].digest
        # A forward proxy sees the absolute URI of the registry, once per request sent.
        assert proxy.seen and all(s.path.startswith(f"http://{registry.host}/v2/")
                                  for s in proxy.seen)
        assert len(proxy.seen) == through.transport.requests_sent


def test_no_proxy_bypasses_the_proxy(registry: Registry, pushed_images: list[Pushed],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_proxies(monkeypatch)
    with FaultProxy(registry.port) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://{proxy.host}")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert client(registry.host).head_manifest("immu-test/app", pushed_images[0].digest) \
            == pushed_images[0].digest
        assert proxy.seen == []


def test_an_unreachable_proxy_is_a_clear_error(registry: Registry, pushed_images: list[Pushed],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_proxies(monkeypatch)
    with FaultProxy(registry.port) as proxy:
        dead = proxy.host
    monkeypatch.setenv("HTTP_PROXY", f"http://{dead}")
    with pytest.raises(RegistryError, match=r"failed after 2 tries: ProxyError"):
        client(registry.host).head_manifest("immu-test/app", pushed_images[0].digest)


def test_netrc_never_replaces_the_registry_credentials(
        registry: Registry, pushed_images: list[Pushed], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    # requests would send ~/.netrc's Basic header in place of ours (or of a Bearer token).
    _clear_proxies(monkeypatch)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login intruder password not-the-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert client(registry.host).head_manifest("immu-test/app", pushed_images[0].digest) \
        == pushed_images[0].digest
