"""Registry credentials and the auth handshake (Basic, Bearer token flow).

Credentials come from ``IMMU_REGISTRY_USERNAME``/``IMMU_REGISTRY_PASSWORD`` or the Docker
config that ``docker login`` and docker/login-action write, including the credential
helpers it names (``credHelpers``, ``credsStore``). Secrets never appear in a
``repr``, a message or a log line: only the username and where it came from are shown.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from immu_action.core.references import DOCKER_HUB_HOSTS
from immu_action.errors import BadInput

IDENTITY_TOKEN_USER = "<token>"


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """A username and a secret (password or identity token) for one registry host."""

    username: str
    password: str = field(repr=False)
    source: str = "environment"

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***, source={self.source!r})"

    @property
    def identity_token(self) -> bool:
        """True when the secret is an OAuth2 refresh token (``docker login`` stored an
        ``identitytoken``; credential helpers say so with the user name ``<token>``)."""
        return self.username == IDENTITY_TOKEN_USER

    def basic_header(self) -> str:
        """The value of an ``Authorization: Basic`` header."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


DOCKER_HUB_API = "registry-1.docker.io"


def _normalise_host(key: str) -> str:
    """``https://host:5000/v1/`` -> ``host:5000``: Docker config keys come in many shapes.
    Docker Hub's names (``https://index.docker.io/v1/``, the key ``docker login`` writes,
    ``docker.io``, ``registry-1.docker.io``) all become ``docker.io``."""
    key = re.sub(r"^[a-z]+://", "", key.strip())
    host = key.split("/", 1)[0].lower()
    return "docker.io" if host in DOCKER_HUB_HOSTS else host


def docker_config_path(env: Mapping[str, str]) -> Path:
    """Where the Docker CLI keeps ``config.json`` (``$DOCKER_CONFIG`` or ``~/.docker``)."""
    base = env.get("DOCKER_CONFIG") or str(Path(env.get("HOME") or Path.home()) / ".docker")
    return Path(base) / "config.json"


def read_docker_config(path: Path) -> dict[str, Any]:
    """The Docker config at ``path`` ({} when there is none); a broken one is bad input."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise BadInput(f"{path}: cannot read Docker config ({type(e).__name__}); "
                       "fix or remove the file, or set IMMU_REGISTRY_USERNAME/PASSWORD") from e
    if not isinstance(config, dict):
        raise BadInput(f"{path}: a Docker config is a JSON object; fix or remove the file")
    return config


HELPER_TIMEOUT_S = 30.0


def _from_docker_config(host: str, path: Path, env: Mapping[str, str]) -> Credentials | None:
    """Credentials for ``host`` from a Docker config, or None when it has none.

    As the Docker CLI: a ``credHelpers`` entry for the host wins, then ``credsStore``;
    each names a credential helper program ``docker-credential-<name>`` that is asked
    (``get``). When the helper has nothing for the host, the ``auths`` entry is used.
    """
    config = read_docker_config(path)
    if not config:
        return None
    wanted = _normalise_host(host)
    helpers = config.get("credHelpers")
    per_host = [str(name) for key, name in (helpers or {}).items()
                if _normalise_host(str(key)) == wanted] if isinstance(helpers, dict) else []
    helper = per_host[0] if per_host else str(config.get("credsStore") or "")
    if helper:
        found = _from_helper(helper, host, path, env)
        if found is not None:
            return found
    auths = config.get("auths")
    if not isinstance(auths, dict):
        return None
    for key, entry in auths.items():
        if _normalise_host(str(key)) != wanted or not isinstance(entry, dict):
            continue
        if entry.get("identitytoken"):
            # An OAuth2 refresh token, traded for access tokens (see Transport._fetch_token).
            return Credentials(username=IDENTITY_TOKEN_USER, password=str(entry["identitytoken"]),
                               source=f"{path} (identitytoken)")
        if entry.get("auth"):
            try:
                user, _, secret = base64.b64decode(str(entry["auth"])).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError) as e:
                raise BadInput(f"{path}: auths.{key}.auth is not base64 of user:password; "
                               f"run `docker login {host}` again") from e
            if user and secret:
                return Credentials(username=user, password=secret, source=str(path))
        if entry.get("username") and entry.get("password"):
            return Credentials(username=str(entry["username"]), password=str(entry["password"]),
                               source=str(path))
    return None


def _run_helper(program: str, action: str, given: str, path: Path,
                env: Mapping[str, str]) -> subprocess.CompletedProcess[str] | None:
    """Run ``program action`` with ``given`` on stdin; None when the program is missing."""
    try:
        return subprocess.run([program, action], input=given, capture_output=True, text=True,
                              timeout=HELPER_TIMEOUT_S, env=dict(env), check=False)
    except FileNotFoundError:
        return None
    except subprocess.TimeoutExpired as e:
        raise BadInput(f"{path}: credential helper {program} did not answer `{action}` within "
                       f"{HELPER_TIMEOUT_S:.0f}s (is it waiting for a password prompt or an "
                       "unlocked keyring?); unlock it, or set "
                       "IMMU_REGISTRY_USERNAME/IMMU_REGISTRY_PASSWORD") from e
    except OSError as e:
        raise BadInput(f"{path}: credential helper {program} cannot run "
                       f"({type(e).__name__}); fix it, or set "
                       "IMMU_REGISTRY_USERNAME/IMMU_REGISTRY_PASSWORD") from e


def _from_helper(name: str, host: str, path: Path, env: Mapping[str, str]) -> Credentials | None:
    """Ask credential helper ``docker-credential-<name>`` for ``host``'s credentials.

    The server address is the one ``docker login`` stored, which may be a URL
    (``https://index.docker.io/v1/``): ``list`` finds it, then ``get`` fetches it.
    A helper that has nothing for the host answers None; a missing helper, a helper
    that fails or hangs, or one that answers garbage is a clear error.
    """
    program = f"docker-credential-{name}"
    setting = f"credHelpers/credsStore {name!r} in {path}"
    listed = _run_helper(program, "list", "", path, env)
    if listed is None:
        raise BadInput(f"{setting}: {program} is not on PATH; install it (or fix the config "
                       "to name an installed helper), or set "
                       "IMMU_REGISTRY_USERNAME/IMMU_REGISTRY_PASSWORD")
    addresses = [host]
    try:
        known = json.loads(listed.stdout) if listed.returncode == 0 else {}
        addresses = [str(a) for a in known
                     if _normalise_host(str(a)) == _normalise_host(host)] or [host]
    except (ValueError, TypeError, AttributeError):
        pass  # `list` is optional in older helpers: ask for the host itself
    for address in addresses:
        done = _run_helper(program, "get", address, path, env)
        assert done is not None  # it ran a moment ago
        if done.returncode != 0:
            message = (done.stdout or done.stderr).strip()
            if "credentials not found" in message.lower():
                continue
            raise BadInput(f"{setting}: `{program} get` failed for {address} (exit "
                           f"{done.returncode}: {message[:200]}); fix the helper, or set "
                           "IMMU_REGISTRY_USERNAME/IMMU_REGISTRY_PASSWORD")
        try:
            answer = json.loads(done.stdout)
            user, secret = str(answer["Username"]), str(answer["Secret"])
        except (ValueError, KeyError, TypeError) as e:
            raise BadInput(f"{setting}: `{program} get` did not answer JSON with Username "
                           "and Secret; fix the helper, or set "
                           "IMMU_REGISTRY_USERNAME/IMMU_REGISTRY_PASSWORD") from e
        if secret:
            return Credentials(username=user, password=secret, source=f"{program} ({path})")
    return None


def load_credentials(host: str, env: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials for ``host``: environment first, then the Docker config; None = anonymous."""
    env = os.environ if env is None else env
    user, secret = env.get("IMMU_REGISTRY_USERNAME"), env.get("IMMU_REGISTRY_PASSWORD")
    if user and secret:
        return Credentials(username=user, password=secret, source="IMMU_REGISTRY_USERNAME")
    if bool(user) != bool(secret):
        raise BadInput("set both IMMU_REGISTRY_USERNAME and IMMU_REGISTRY_PASSWORD, or neither")
    return _from_docker_config(host, docker_config_path(env), env)


_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``WWW-Authenticate: Bearer realm="..",service=".."`` -> ("bearer", {realm, service})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _PARAM.finditer(rest)}
    return scheme.lower(), params


def _scope_map(items: Iterable[str]) -> tuple[dict[str, set[str]], set[str]]:
    """Scope items -> ({repository name: actions}, other items as they are)."""
    repos: dict[str, set[str]] = {}
    other: set[str] = set()
    for item in items:
        kind, _, rest = item.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind == "repository" and name and actions:
            repos.setdefault(name, set()).update(a for a in actions.split(",") if a)
        else:
            other.add(item)
    return repos, other


def merge_scopes(items: Iterable[str]) -> tuple[str, ...]:
    """One scope list asking for everything ``items`` ask for, one entry per repository."""
    repos, other = _scope_map(items)
    return (*sorted(other), *(f"repository:{name}:{','.join(sorted(actions))}"
                              for name, actions in sorted(repos.items())))


def scope_covers(granted: Iterable[str], wanted: Iterable[str]) -> bool:
    """True when a token asked for ``granted`` was asked for everything in ``wanted``."""
    have, have_other = _scope_map(granted)
    need, need_other = _scope_map(wanted)
    return need_other <= have_other and all(
        actions <= have.get(name, set()) for name, actions in need.items())
