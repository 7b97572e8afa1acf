"""Docker engine (docker-py): connect, build images, make sure service images exist.

Every docker-py exception leaves this module as an ``EngineError`` (exit 4) whose
message says what to do next; transient engine failures are retried a bounded
number of times.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import docker
import docker.errors
import requests

from immu_action.adapters.docker.built import BuildFailed, BuiltImage, LogSink
from immu_action.adapters.docker.probe import START_HINT, engine_host
from immu_action.errors import BadInput, EngineError
from immu_action.spec import BuildSpec

T = TypeVar("T")


# Bounded retry policy for idempotent engine calls (inspect, remove, pull).
RETRY_ATTEMPTS = 4
RETRY_BASE_DELAY_S = 0.5


def is_transient(exc: BaseException) -> bool:
    """Whether an engine failure is worth retrying (connection trouble or a 5xx)."""
    transport = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
    if isinstance(exc, transport):
        return True
    if isinstance(exc, docker.errors.APIError) and not isinstance(exc, docker.errors.NotFound):
        status = exc.status_code or 0
        # 500s with these texts are permanent (bad image, bad command), not engine hiccups.
        permanent = ("executable file not found", "no such", "invalid", "not found")
        text = str(exc.explanation or "").lower()
        return status >= 500 and not any(p in text for p in permanent)
    return False


def retry(call: Callable[[], T], *, what: str, attempts: int = RETRY_ATTEMPTS) -> T:
    """Run ``call``; retry transient failures with exponential backoff, then raise."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as e:
            if not is_transient(e) or attempt == attempts:
                raise
            time.sleep(RETRY_BASE_DELAY_S * 2 ** (attempt - 1))
    raise AssertionError(f"unreachable: {what}")  # pragma: no cover


def connect(timeout_s: float = 120.0) -> docker.DockerClient:
    """A client for the engine named by the environment: DOCKER_HOST, else the CLI's current
    docker context, else the default socket."""
    host = engine_host()
    where = host or "unix:///var/run/docker.sock"
    try:
        from_context = host is not None and not os.environ.get("DOCKER_HOST")
        client = (docker.DockerClient(base_url=host, timeout=int(timeout_s)) if from_context
                  else docker.from_env(timeout=int(timeout_s)))
        retry(client.ping, what="ping", attempts=3)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        raise EngineError(
            f"no Docker engine answers at {where} ({_short(e)}); {START_HINT}"
        ) from e
    return client


def build(
    client: docker.DockerClient,
    spec: BuildSpec,
    *,
    labels: Mapping[str, str],
    tag: str | None,
    log: LogSink,
    what: str = "image",
) -> BuiltImage:
    """Build ``spec`` through the Engine API, streaming the build log to ``log``."""
    dockerfile = spec.context / spec.dockerfile
    if not dockerfile.is_file():
        raise BadInput(f"{what}: Dockerfile {dockerfile} does not exist")
    all_labels = {**spec.labels, **labels}
    try:
        stream = client.api.build(
            path=str(spec.context),
            dockerfile=spec.dockerfile,
            target=spec.target,
            buildargs=dict(spec.build_args),
            labels=all_labels,
            tag=tag,
            rm=True,
            forcerm=True,  # never leave intermediate containers behind, even on failure
            decode=True,
        )
        image_id = _follow_build(stream, log=log, what=what)
    except docker.errors.APIError as e:
        raise EngineError(f"building {what} failed: {_short(e)}") from e
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        raise EngineError(f"building {what}: the Docker engine failed: {_short(e)}") from e
    return BuiltImage(image_id=image_id, labels=all_labels)


def _follow_build(stream: Any, *, log: LogSink, what: str) -> str:
    image_id = ""
    tail: list[str] = []
    for chunk in stream:
        if "stream" in chunk:
            text = str(chunk["stream"])
            log(text)
            tail = (tail + text.splitlines())[-20:]
        elif "error" in chunk:
            detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
            last = "\n".join(tail[-10:])
            raise BuildFailed(f"building {what} failed: {str(detail).strip()}\n{last}".rstrip())
        elif "aux" in chunk and "ID" in chunk["aux"]:
            image_id = str(chunk["aux"]["ID"])
        elif "status" in chunk:
            log(str(chunk["status"]) + "\n")
    if not image_id:
        raise EngineError(f"building {what}: the engine reported no image ID")
    return image_id


def ensure_image(client: docker.DockerClient, ref: str, *, what: str, log: LogSink) -> str:
    """The ID of image ``ref``, pulling it (with retries) when the engine lacks it."""
    try:
        return str(client.images.get(ref).id)
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as e:
        raise EngineError(f"{what}: inspecting image {ref} failed: {_short(e)}") from e
    log(f"pulling {ref} for {what}\n")
    try:
        image = retry(lambda: client.images.pull(ref), what=f"pull {ref}")
    except docker.errors.APIError as e:
        raise EngineError(
            f"{what}: image {ref} is not on this engine and cannot be pulled: {_short(e)}; "
            "build or load it first, or fix the image name"
        ) from e
    return str(image.id)


def image_config_digest(client: docker.DockerClient, ref: str) -> str:
    """The image ID (= config digest) of ``ref``."""
    try:
        return str(retry(lambda: client.images.get(ref), what=f"inspect {ref}").id)
    except docker.errors.ImageNotFound as e:
        raise BadInput(f"image {ref} is not on this Docker engine; run `immu build` first") from e
    except docker.errors.APIError as e:
        raise EngineError(f"inspecting image {ref} failed: {_short(e)}") from e


def _short(e: BaseException) -> str:
    """One line of an exception's text."""
    explained = isinstance(e, docker.errors.APIError) and e.explanation
    text = str(e.explanation) if explained else str(e)  # type: ignore[attr-defined]
    return " ".join(text.split())[:500]


def info(client: docker.DockerClient) -> dict[str, Any]:
    """The engine's ``/info`` (for an engine ``probe.engine_info`` cannot reach)."""
    try:
        return dict(retry(client.info, what="info", attempts=3))
    except docker.errors.DockerException as e:
        raise EngineError(f"reading the engine's info failed: {_short(e)}") from e


def known_id(client: docker.DockerClient, candidates: Sequence[str]) -> str:
    """The engine's own ID of the first of ``candidates`` (IDs, digests) it knows, else ""."""
    for candidate in filter(None, candidates):
        try:
            return str(client.api.inspect_image(candidate)["Id"])
        except docker.errors.NotFound:
            continue
        except docker.errors.DockerException as e:
            raise EngineError(f"inspecting the built image failed: {_short(e)}") from e
    return ""


def tag(client: docker.DockerClient, image_id: str, ref: str) -> None:
    """Name image ``image_id`` ``ref`` (``repository:tag``) in the engine."""
    repository, _, name = ref.rpartition(":")
    try:
        retry(lambda: client.api.tag(image_id, repository, name), what="tag")
    except docker.errors.DockerException as e:
        raise EngineError(f"tagging the built image {ref} failed: {_short(e)}") from e
