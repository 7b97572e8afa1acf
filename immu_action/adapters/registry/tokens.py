"""The registry token service (Bearer auth): a token for a scope, by the OAuth2 refresh-token
form when ``docker login`` stored an identity token, else ``GET realm`` with Basic credentials
(or anonymously); calls retried like the registry's, failures named without the secret."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests

from immu_action.adapters.registry.retry import RETRY_STATUSES, Backoff
from immu_action.errors import RegistryError

if TYPE_CHECKING:
    from immu_action.adapters.registry.http import Transport

OAUTH_CLIENT_ID = "immu-action"  # the client_id of the OAuth2 token form


def fetch_token(t: Transport, params: dict[str, str], scope: tuple[str, ...]) -> str:
    """The Bearer token flow for ``scope``.

    With an identity token (``docker login`` stored a refresh token): the OAuth2 form,
    ``POST realm`` grant_type=refresh_token, falling back to GET when the token service
    has no OAuth2 endpoint (404/405). Otherwise ``GET realm?service=&scope=`` with Basic
    credentials if any (anonymous pulls get a token too).
    """
    realm = params.get("realm")
    if not realm:
        raise RegistryError(f"{t.host}: Bearer challenge without a realm")
    creds = t.credentials
    if creds is not None and creds.identity_token:
        form = {"grant_type": "refresh_token", "refresh_token": creds.password,
                "client_id": OAUTH_CLIENT_ID, "scope": " ".join(scope),
                "service": params.get("service", "")}
        reply = _token_call(t, "POST", realm, data=form)
        if reply.status_code not in (404, 405):
            return _token_from(t, reply, realm, "identity token")
    query = [("service", params["service"])] if "service" in params else []
    query += [("scope", s) for s in scope]
    headers = {"Authorization": creds.basic_header()} if creds else {}
    return _token_from(t, _token_call(t, "GET", realm, params=query, headers=headers),
                            realm, "credentials")

def _token_call(t: Transport, method: str, realm: str, **kwargs: Any) -> requests.Response:
    """One call to the token service, retried on 429, 5xx and connection errors."""
    backoff = Backoff(t.retry, t.sleep)
    while True:
        attempt = backoff.next_try()
        try:
            reply: requests.Response | None = t.session.request(
                method, realm, timeout=t.timeout, **t.environment(realm), **kwargs)
        except requests.RequestException as e:
            if backoff.last_try:
                raise RegistryError(f"{t.host}: token service {realm} failed after "
                                    f"{attempt} tries: {type(e).__name__}") from e
            reply = None
        if reply is not None and reply.status_code not in RETRY_STATUSES:
            return reply
        if reply is not None and backoff.last_try:
            raise RegistryError(f"{t.host}: token service {realm} answered HTTP "
                                f"{reply.status_code} {attempt} times; retry later")
        if not backoff.pause(reply.headers.get("Retry-After") if reply is not None else None):
            raise RegistryError(f"{t.host}: gave up on token service {realm} after "
                                f"{attempt} tries and {backoff.waited:.1f}s of backoff")

def _token_from(t: Transport, reply: requests.Response, realm: str, what: str) -> str:
    """The token of a token-service answer, or a clear error without the secret."""
    if reply.status_code in (400, 401, 403):
        again = ("run `docker login` again: the identity token was revoked or expired"
                 if what == "identity token" else
                 f"run `docker login {t.host}` or set "
                 "IMMU_REGISTRY_USERNAME/IMMU_REGISTRY_PASSWORD")
        raise RegistryError(f"{t.host}: token service refused the {what} "
                            f"{t.who()} (HTTP {reply.status_code}); {again}")
    try:
        data = reply.json()
        return str(data.get("token") or data["access_token"])
    except (ValueError, KeyError, AttributeError) as e:
        raise RegistryError(f"{t.host}: token service {realm} answered HTTP "
                            f"{reply.status_code} without a token") from e
