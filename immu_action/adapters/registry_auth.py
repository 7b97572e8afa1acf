"""Registry credentials and the auth handshake (Basic, Bearer token flow).

Credentials come from ``IMMU_REGISTRY_USERNAME``/``IMMU_REGISTRY_PASSWORD`` or the Docker
config that ``docker login`` and docker/login-action write. Secrets never appear in a
``repr``, a message or a log line: only the username and where it came from are shown.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from immu_action.errors import BadInput


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """A username and a secret (password or identity token) for one registry host."""

    username: str
    password: str = field(repr=False)
    source: str = "environment"

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***, source={self.source!r})"

    def basic_header(self) -> str:
        """The value of an ``Authorization: Basic`` header."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def _normalise_host(key: str) -> str:
    """``https://host:5000/v1/`` -> ``host:5000``: Docker config keys come in many shapes."""
    key = re.sub(r"^[a-z]+://", "", key.strip())
    return key.split("/", 1)[0].lower()


def docker_config_path(env: Mapping[str, str]) -> Path:
    """Where the Docker CLI keeps ``config.json`` (``$DOCKER_CONFIG`` or ``~/.docker``)."""
    base = env.get("DOCKER_CONFIG") or str(Path(env.get("HOME") or Path.home()) / ".docker")
    return Path(base) / "config.json"


def _from_docker_config(host: str, path: Path) -> Credentials | None:
    """Credentials for ``host`` from a Docker config file, or None when it has none."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise BadInput(f"{path}: cannot read Docker config ({type(e).__name__}); "
                       "fix or remove the file, or set IMMU_REGISTRY_USERNAME/PASSWORD") from e
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        if _normalise_host(str(key)) != host.lower() or not isinstance(entry, dict):
            continue
        if entry.get("identitytoken"):
            # An OAuth refresh token: the token endpoint accepts it as the password of <token>.
            return Credentials(username="<token>", password=str(entry["identitytoken"]),
                               source=f"{path} (identitytoken)")
        if entry.get("auth"):
            try:
                user, _, secret = base64.b64decode(str(entry["auth"])).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError) as e:
                raise BadInput(f"{path}: auths.{key}.auth is not base64 of user:password; "
                               f"run `docker login {host}` again") from e
            return Credentials(username=user, password=secret, source=str(path))
        if entry.get("username") and entry.get("password"):
            return Credentials(username=str(entry["username"]), password=str(entry["password"]),
                               source=str(path))
    # Credential helpers (credsStore/credHelpers) are not run: they are interactive
    # programs outside our retry policy; the environment variables cover CI.
    return None


def load_credentials(host: str, env: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials for ``host``: environment first, then the Docker config; None = anonymous."""
    env = os.environ if env is None else env
    user, secret = env.get("IMMU_REGISTRY_USERNAME"), env.get("IMMU_REGISTRY_PASSWORD")
    if user and secret:
        return Credentials(username=user, password=secret, source="IMMU_REGISTRY_USERNAME")
    if bool(user) != bool(secret):
        raise BadInput("set both IMMU_REGISTRY_USERNAME and IMMU_REGISTRY_PASSWORD, or neither")
    return _from_docker_config(host, docker_config_path(env))


_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``WWW-Authenticate: Bearer realm="..",service=".."`` -> ("bearer", {realm, service})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _PARAM.finditer(rest)}
    return scheme.lower(), params
