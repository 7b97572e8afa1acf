"""HTTP transport to one registry host: scheme choice, auth handshake, bounded retries.

One ``requests.Session`` per host. A request is retried on 429, 5xx and connection
errors with exponential backoff that honours ``Retry-After``, within a total wait cap.
On 401 it authenticates (Basic, or a Bearer token for the request's scope, cached per
scope) and tries once more; a second 401, or a 403, is final.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import requests

from immu_action.adapters.registry.auth import (
    DOCKER_HUB_API,
    Credentials,
    merge_scopes,
    parse_challenge,
    scope_covers,
)
from immu_action.adapters.registry.retry import (
    RETRY_STATUSES,
    Backoff,
    RetryPolicy,
)
from immu_action.adapters.registry.tokens import fetch_token
from immu_action.core.references import DOCKER_HUB_HOSTS
from immu_action.errors import BadInput, RegistryError

Body = bytes | Callable[[], Iterable[bytes]] | None


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (with or without a port)."""
    if host.startswith("["):
        name = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        name = host.split(":", 1)[0]
    else:
        name = host
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Transport:
    """Authenticated, retrying HTTP access to ``/v2/`` of one registry host."""

    def __init__(self, host: str, *, credentials: Credentials | None, insecure: bool = False,
                 retry: RetryPolicy | None = None, timeout: tuple[float, float] = (10.0, 120.0),
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.host = host
        self.scheme: Literal["http", "https"] = (
            "http" if insecure or is_loopback(host) else "https")
        self.credentials = credentials
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.sleep = sleep
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "immu-action"
        # The environment (HTTPS_PROXY/NO_PROXY, REQUESTS_CA_BUNDLE) is read once per URL
        # origin, not on every request as requests does with trust_env (that scan of
        # os.environ was a third of a manifest request's client CPU). ~/.netrc is never
        # used: its Basic header would silently replace our registry Bearer token.
        self.session.trust_env = False
        self._env: dict[str, tuple[dict[str, str], bool | str]] = {}
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._tokens: dict[tuple[str, ...], str] = {}
        self._announced: set[str] = set()  # scope items this client is about to need
        self._auth_lock = threading.Lock()
        self._probe = threading.Lock()  # held by the first request, never released
        self._probed = threading.Event()  # set once that request has its answer
        self.requests_sent = 0

    def __repr__(self) -> str:
        return f"Transport(host={self.host!r}, scheme={self.scheme!r}, {self.credentials!r})"

    def will_write(self, repository: str) -> None:
        """Announce pushes to ``repository``: every token asked for then covers them."""
        self._announced.add(f"repository:{repository}:pull,push")

    def will_read(self, repository: str) -> None:
        """Announce pulls from ``repository`` (the source of a cross-repository mount)."""
        self._announced.add(f"repository:{repository}:pull")

    def url(self, path: str) -> str:
        """Absolute URL for a ``/v2/...`` path, or a ``Location`` the registry returned.
        Docker Hub (``docker.io``) serves its API at ``registry-1.docker.io``."""
        if path.startswith(("http://", "https://")):
            return path
        host = DOCKER_HUB_API if self.host.lower() in DOCKER_HUB_HOSTS else self.host
        return f"{self.scheme}://{host}{path}"

    def request(self, method: str, path: str, *, scope: tuple[str, ...],
                headers: Mapping[str, str] | None = None, body: Body = None,
                stream: bool = False, write: bool = False) -> requests.Response:
        """Send with auth and retries; returns any non-retryable response (caller checks it).

        ``body`` may be a factory returning a fresh iterator, so a streamed upload can be
        replayed on retry without holding it in memory.
        """
        response = self._probing(method, path, scope, headers, body, stream, write, False)
        assert response is not None  # only a single try gives up without an answer
        return response

    def request_once(self, method: str, path: str, *, scope: tuple[str, ...],
                     headers: Mapping[str, str] | None = None, body: Body = None,
                     write: bool = False) -> requests.Response | None:
        """One try (after auth): a 429/5xx answer is returned, a lost connection is None.

        For requests that must not be re-sent as they are, like a PUT into an upload
        session the registry may have half-written; the caller decides what to retry.
        """
        return self._probing(method, path, scope, headers, body, False, write, True)

    def _probing(self, method: str, path: str, scope: tuple[str, ...],
                 headers: Mapping[str, str] | None, body: Body, stream: bool, write: bool,
                 once: bool) -> requests.Response | None:
        # A fresh client's concurrent first requests would each meet the same 401: the
        # first one probes, the others wait until it has learnt the challenge (and token).
        probe = not self._probed.is_set() and self._probe.acquire(blocking=False)
        if not probe:
            self._probed.wait(self.timeout[0])
        try:
            return self._request(method, path, scope, headers, body, stream, write, once)
        finally:
            self._probed.set()  # also when the probe failed: the others find out alone

    def _request(self, method: str, path: str, scope: tuple[str, ...],
                 headers: Mapping[str, str] | None, body: Body, stream: bool,
                 write: bool, once: bool) -> requests.Response | None:
        backoff, authed = Backoff(self.retry, self.sleep), False
        while True:
            attempt = backoff.next_try()
            sent = self._auth_header(scope)
            response = self._send(method, path, sent, headers, body, stream,
                                  0 if once else attempt)
            if once and (response is None or response.status_code in RETRY_STATUSES):
                return response
            retry_after = None
            if response is not None and response.status_code == 401 and not authed:
                authed = True
                self._authenticate(response, scope, path, sent)
                self._probed.set()
                backoff.attempt -= 1  # the auth round trip is not a failure
                continue
            if response is not None and response.status_code in (401, 403):
                raise self._refused(method, path, response, write)
            if response is not None and response.status_code not in RETRY_STATUSES:
                return response
            status = None if response is None else response.status_code
            if response is not None:
                response.close()
                if backoff.last_try:
                    raise self._gave_up(method, path, backoff, status)
                retry_after = response.headers.get("Retry-After")
            self._probed.set()  # retrying: let waiting requests try on their own
            if not backoff.pause(retry_after):
                raise self._gave_up(method, path, backoff, status)

    def _gave_up(self, method: str, path: str, backoff: Backoff,
                 status: int | None) -> RegistryError:
        """The retry budget is spent (count or total wait)."""
        last = f"HTTP {status}" if status else "no connection"
        return RegistryError(f"{self.host}: gave up on {method} {path} after "
                             f"{backoff.attempt} tries and {backoff.waited:.1f}s of backoff "
                             f"(last: {last}); the registry is overloaded or failing, retry later")

    def _send(self, method: str, path: str, auth: str | None,
              headers: Mapping[str, str] | None, body: Body, stream: bool,
              attempt: int) -> requests.Response | None:
        """One HTTP exchange; a connection error returns None while tries remain
        (``attempt`` 0: always)."""
        all_headers = dict(headers or {})
        if auth:
            all_headers["Authorization"] = auth
        data = body() if callable(body) else body
        self.requests_sent += 1
        url = self.url(path)
        try:
            return self.session.request(method, url, headers=all_headers, data=data,
                                        stream=stream, timeout=self.timeout,
                                        allow_redirects=method in ("GET", "HEAD"),
                                        **self.environment(url))
        except requests.exceptions.InvalidURL as e:
            raise BadInput(f"registry host {self.host!r} gives an invalid URL") from e
        except requests.RequestException as e:
            if attempt and attempt >= self.retry.attempts:
                raise RegistryError(f"{self.host}: {method} {path} failed after {attempt} "
                                    f"tries: {type(e).__name__}; is the registry reachable "
                                    f"over {self.scheme}?") from e
            return None

    def environment(self, url: str) -> dict[str, Any]:
        """``proxies`` and ``verify`` for ``url``'s origin from the environment, as requests'
        trust_env would give them, computed once per origin."""
        origin = "/".join(url.split("/", 3)[:3])
        found = self._env.get(origin)
        if found is None:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            found = self._env[origin] = (requests.utils.get_environ_proxies(origin),
                                         bundle or True)
        return {"proxies": found[0], "verify": found[1]}

    def _auth_header(self, scope: tuple[str, ...]) -> str | None:
        """The Authorization value to send for ``scope``, when the registry asked for auth."""
        if self._challenge is None:
            return None
        scheme, params = self._challenge
        if scheme == "basic":
            return self.credentials.basic_header() if self.credentials else None
        token = self._covering(scope)
        if token is None:
            # The realm is known from an earlier challenge: fetch the token for this new
            # scope now rather than after one more 401 round trip.
            with self._auth_lock:
                token = self._covering(scope)
                if token is None:
                    wanted = merge_scopes([*scope, *self._announced])
                    token = self._tokens[wanted] = fetch_token(self, params, wanted)
        return f"Bearer {token}"

    def _covering(self, scope: tuple[str, ...]) -> str | None:
        """A cached token asked for at least ``scope`` (a token for the whole promotion
        serves its reads, pushes and mounts: one token fetch instead of one per scope)."""
        for key, token in list(self._tokens.items()):  # a snapshot: others may add
            if scope_covers(key, scope):
                return token
        return None

    def _authenticate(self, response: requests.Response, scope: tuple[str, ...],
                      path: str, sent: str | None) -> None:
        """Learn the challenge of a 401 and fetch a fresh token for ``scope`` if Bearer."""
        header = response.headers.get("WWW-Authenticate", "")
        response.close()
        scheme, params = parse_challenge(header)
        if scheme not in ("basic", "bearer"):
            raise RegistryError(f"{self.host}: unsupported auth challenge {scheme!r} on {path}")
        # Concurrent requests may all meet a 401: one fetches the token, the others reuse it.
        with self._auth_lock:
            self._challenge = (scheme, params)
            if scheme != "bearer":
                return
            cached = self._covering(scope)
            if cached is None or f"Bearer {cached}" == sent:
                # Expired (or granted less than asked): drop it, ask again for everything.
                self._tokens = {k: t for k, t in self._tokens.items() if f"Bearer {t}" != sent}
                wanted = merge_scopes([*scope, *self._announced])
                self._tokens[wanted] = fetch_token(self, params, wanted)

    def who(self) -> str:
        """Which identity we used, without the secret."""
        if not self.credentials:
            return ("(anonymous: no credentials found in IMMU_REGISTRY_USERNAME/PASSWORD or in "
                    "the Docker config's auths; credential helpers are not run)")
        return f"of user {self.credentials.username!r} from {self.credentials.source}"

    def _refused(self, method: str, path: str, response: requests.Response,
                 write: bool) -> RegistryError:
        """A final 401/403, naming the repository and what to do."""
        response.close()
        repo = path.split("/v2/", 1)[-1].split("/manifests/")[0].split("/blobs/")[0]
        action = "push to" if write else "read"
        return RegistryError(
            f"{self.host}: HTTP {response.status_code}: not allowed to {action} repository "
            f"{repo!r} with the credentials {self.who()}; run `docker login {self.host}` "
            "or set IMMU_REGISTRY_USERNAME/IMMU_REGISTRY_PASSWORD to an account with "
            f"{'push' if write else 'pull'} access")
