"""Push the built image through the engine and read back the manifest digest it reports.

The digest is then verified independently against the registry (HEAD + GET + sha256)
by the registry adapter: the engine's word alone is not the proof.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from typing import Any

import docker
import docker.errors
import requests

from immu_action.adapters.docker.built import LogSink
from immu_action.errors import RegistryError

PUSH_ATTEMPTS = 3
PUSH_BACKOFF_S = 2.0
_TRANSIENT = re.compile(
    r"\b(5\d\d|429|toomanyrequests|timeout|timed out|connection reset|EOF|"
    r"unexpected HTTP status: 5)", re.IGNORECASE,
)
_DENIED = re.compile(r"unauthori[sz]ed|denied|authentication required|forbidden", re.IGNORECASE)
_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


def auth_from_env(env: Mapping[str, str] | None = None) -> dict[str, str] | None:
    """Engine auth from ``IMMU_REGISTRY_USERNAME``/``PASSWORD``; None = the Docker config's."""
    env = os.environ if env is None else env
    user, password = env.get("IMMU_REGISTRY_USERNAME"), env.get("IMMU_REGISTRY_PASSWORD")
    if user and password:
        return {"username": user, "password": password}
    return None


def push(
    client: docker.DockerClient,
    repository: str,
    tag: str,
    *,
    auth: dict[str, str] | None,
    log: LogSink,
) -> str:
    """Push ``repository:tag``; returns the manifest digest. Transient failures retried."""
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        try:
            return _push_once(client, repository, tag, auth=auth, log=log)
        except _Transient as e:
            if attempt == PUSH_ATTEMPTS:
                raise RegistryError(
                    f"pushing {repository}:{tag} failed {PUSH_ATTEMPTS} times: {e}"
                ) from e
            log(f"push failed ({e}); retrying in {PUSH_BACKOFF_S * attempt:g}s\n")
            time.sleep(PUSH_BACKOFF_S * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


class _Transient(Exception):
    """A push failure worth another attempt."""


def _push_once(
    client: docker.DockerClient, repository: str, tag: str, *,
    auth: dict[str, str] | None, log: LogSink,
) -> str:
    try:
        stream = client.api.push(repository, tag=tag, stream=True, decode=True,
                                 auth_config=auth)
        return _follow(stream, f"{repository}:{tag}", log)
    except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
        raise _Transient(str(e)) from e
    except docker.errors.APIError as e:
        text = str(e.explanation or e)
        if _DENIED.search(text):
            raise RegistryError(_denied(repository, text)) from e
        if (e.status_code and e.status_code >= 500) or _TRANSIENT.search(text):
            raise _Transient(text) from e
        raise RegistryError(f"pushing {repository}:{tag} failed: {text}") from e


def _follow(stream: Any, ref: str, log: LogSink) -> str:
    digest = ""
    for chunk in stream:
        if "error" in chunk:
            text = str(chunk.get("errorDetail", {}).get("message") or chunk["error"])
            if _DENIED.search(text):
                raise RegistryError(_denied(ref.rsplit(":", 1)[0], text))
            if _TRANSIENT.search(text):
                raise _Transient(text)
            raise RegistryError(f"pushing {ref} failed: {text}")
        aux = chunk.get("aux") or {}
        if aux.get("Digest"):
            digest = str(aux["Digest"])
        status = str(chunk.get("status", ""))
        if status and not chunk.get("progressDetail"):  # skip byte-progress chatter
            log(f"{chunk.get('id', '')}{': ' if chunk.get('id') else ''}{status}\n")
        match = _DIGEST.search(status)
        if match and not digest:
            digest = match.group(1)
    if not digest:
        raise RegistryError(f"pushing {ref}: the engine reported no manifest digest")
    return digest


def _denied(repository: str, text: str) -> str:
    return (
        f"the registry refused the push to {repository}: {text}. Log in "
        "(`docker login`, docker/login-action) or set IMMU_REGISTRY_USERNAME and "
        "IMMU_REGISTRY_PASSWORD for an account that may push there"
    )
