"""Which engine, and what it is, before docker-py is even imported.

``immu run`` launches buildx first and imports docker-py (and requests, ~0.14 s of a build
job's start-up) while BuildKit works. The launch needs only the engine's address and its
image store (the cache mode depends on it): ``engine_host`` resolves the address as the docker
CLI does, and ``engine_info`` reads ``GET /info`` over a Unix socket: one HTTP/1.0 request
(the engine's Go server then sends no chunked body and closes when done), without even
http.client (18 ms of imports). Anything else (``tcp://``, ``ssh://``, TLS) answers None and
the caller asks docker-py instead.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from immu_action.adapters.registry.auth import docker_config_path, read_docker_config
from immu_action.adapters.signals import start_helper
from immu_action.errors import BadInput, EngineError

DEFAULT_SOCKET = "/var/run/docker.sock"
START_HINT = (
    "start one with `scripts/ensure-docker.sh` (installs Debian's docker.io and starts "
    "dockerd), `sudo systemctl start docker`, or point DOCKER_HOST at a running engine"
)
INFO_ATTEMPTS = 3
INFO_BACKOFF_S = 0.5
INFO_TIMEOUT_S = 30.0


def engine_host(environ: Mapping[str, str] | None = None) -> str | None:
    """The engine to talk to: ``DOCKER_HOST``, else the docker CLI's context
    (``DOCKER_CONTEXT`` or the config's ``currentContext``), else None (the default socket)."""
    env = os.environ if environ is None else environ
    if env.get("DOCKER_HOST"):
        return env["DOCKER_HOST"]
    if not _names_a_context(env):
        return None
    import docker.errors
    from docker.context import ContextAPI
    from docker.context.config import get_current_context_name

    name = env.get("DOCKER_CONTEXT") or get_current_context_name()
    if name in ("", "default"):
        return None
    try:
        context = ContextAPI.get_context(name)
    except docker.errors.DockerException as e:
        raise EngineError(f"docker context {name!r} cannot be read: {e}") from e
    if context is None:
        raise EngineError(f"docker context {name!r} does not exist (docker context ls); "
                          "unset DOCKER_CONTEXT or set DOCKER_HOST")
    return str(context.Host) if context.Host else None


def _names_a_context(env: Mapping[str, str]) -> bool:
    """Whether a context other than the default may apply (the CLI config names one)."""
    if env.get("DOCKER_CONTEXT"):
        return True
    try:
        current = read_docker_config(docker_config_path(env)).get("currentContext")
    except BadInput:
        return False  # as before: a broken config names no context (its use says what's wrong)
    return bool(current) and current != "default"


def unix_socket(host: str | None) -> str | None:
    """The socket path of a ``unix://`` host (the default socket for None), else None."""
    if host is None:
        return DEFAULT_SOCKET
    if host.startswith("unix://"):
        return host[len("unix://"):] or DEFAULT_SOCKET
    return None


class _NoAnswer(Exception):
    """The socket answered nothing HTTP (worth asking again)."""


def _get(path: str, resource: str, timeout_s: float) -> tuple[int, bytes]:
    """``GET resource`` over the Unix socket ``path``: (status, body)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(path)
        sock.sendall(f"GET {resource} HTTP/1.0\r\nHost: docker\r\n"
                     "Accept: application/json\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    if len(status) < 2 or not status[0].startswith(b"HTTP/") or not status[1].isdigit():
        raise _NoAnswer(f"not an HTTP answer: {head[:80]!r}")
    return int(status[1]), body


class _Asked:
    """``engine_info(host)`` asked in a helper thread: its answer, or its error, on demand."""

    def __init__(self, host: str | None) -> None:
        self.host = host
        self._answer: dict[str, Any] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._ask, name="immu-engine-info", daemon=True)
        start_helper(self._thread)

    def _ask(self) -> None:
        try:
            self._answer = _info(self.host, timeout_s=INFO_TIMEOUT_S)
        except BaseException as e:  # raised where the answer is wanted
            self._error = e

    def answer(self) -> dict[str, Any] | None:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._answer


_asked: list[_Asked] = []


def ask_info_ahead(host: str | None) -> None:
    """Start asking the engine's ``/info`` now (a helper thread): the next ``engine_info``
    of ``host`` takes that answer (or raises its error), so the question costs nothing of
    the time before buildx starts. Not asking it at all wastes one request, nothing else."""
    _asked[:] = [_Asked(host)]


def forget_asked() -> None:
    """Drop an answer ``ask_info_ahead`` asked for and nothing took."""
    _asked.clear()


def engine_info(host: str | None, *, timeout_s: float = INFO_TIMEOUT_S) -> dict[str, Any] | None:
    """The engine's ``/info`` when it listens on a Unix socket (None for other hosts, which
    docker-py serves). A socket nobody answers on is retried, then an ``EngineError``. An
    answer ``ask_info_ahead`` asked for (of this host) is taken, once."""
    asked = _asked.pop() if _asked else None
    if asked is not None and asked.host == host:
        return asked.answer()
    return _info(host, timeout_s=timeout_s)


def _info(host: str | None, *, timeout_s: float) -> dict[str, Any] | None:
    path = unix_socket(host)
    if path is None:
        return None
    where = f"unix://{path}"
    for attempt in range(1, INFO_ATTEMPTS + 1):
        try:
            status, body = _get(path, "/info", timeout_s)
        except FileNotFoundError as e:  # no engine there: not worth waiting for
            raise EngineError(f"no Docker engine answers at {where} ({e.strerror}); "
                              f"{START_HINT}") from e
        except (OSError, _NoAnswer) as e:
            if attempt == INFO_ATTEMPTS:
                raise EngineError(f"no Docker engine answers at {where} ({e}); "
                                  f"{START_HINT}") from e
            time.sleep(INFO_BACKOFF_S * attempt)
            continue
        if status >= 500 and attempt < INFO_ATTEMPTS:
            time.sleep(INFO_BACKOFF_S * attempt)
            continue
        if status != 200:
            raise EngineError(f"the Docker engine at {where} answered {status} to "
                              f"GET /info: {body[:300].decode(errors='replace').strip()}")
        try:
            info = json.loads(body)
        except ValueError as e:
            raise EngineError(f"the Docker engine at {where} sent no JSON for /info") from e
        return info if isinstance(info, dict) else {}
    raise AssertionError("unreachable")  # pragma: no cover


def store_is_containerd(info: Mapping[str, Any]) -> bool:
    """True on the containerd image store (an image ID is then its manifest/index digest)."""
    status = info.get("DriverStatus") or []
    return any(isinstance(pair, list) and len(pair) == 2 and pair[0] == "driver-type"
               and "containerd" in str(pair[1]) for pair in status)
