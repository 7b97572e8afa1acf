"""Results out of a finished test container: the directory's archive, bounded in size and
extracted safely (regular files and directories only, never outside the destination)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path, PurePosixPath

import docker
import requests
from docker.models.containers import Container

from immu_action.errors import EngineError

MAX_RESULTS_BYTES = 512 * 1024 * 1024  # refuse to copy out more than this from a container


def copy_results(container: Container, path: str, dest: Path) -> bool:
    """Copy the container's results directory into ``dest``; False when it does not exist.

    The archive response is closed on every way out: while the engine still streams an
    archive it holds the container, and removing the container would wait forever (a
    results directory over the limit used to hang the cleanup). docker-py's ``get_archive``
    hides the response, so the request is made through its client's own ``_get``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    api = container.client.api
    try:
        response = api._get(api._url("/containers/{0}/archive", container.id),
                            params={"path": path}, stream=True,
                            headers={"Accept-Encoding": "identity"})
        api._raise_for_status(response)
    except docker.errors.NotFound:
        return False
    except (docker.errors.APIError, requests.exceptions.RequestException) as e:
        raise EngineError(f"copying results {path} out of the container failed: {e}") from e
    buf = io.BytesIO()
    try:
        for chunk in response.iter_content(64 * 1024):
            buf.write(chunk)
            if buf.tell() > MAX_RESULTS_BYTES:
                raise EngineError(f"results directory {path} is larger than "
                                  f"{MAX_RESULTS_BYTES} bytes")
    except requests.exceptions.RequestException as e:
        raise EngineError(f"copying results {path} out of the container failed: {e}") from e
    finally:
        response.close()
    buf.seek(0)
    with tarfile.open(fileobj=buf, mode="r") as tar:
        _extract_safely(tar, dest)
    return True


def _extract_safely(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract regular files and directories only, never outside ``dest`` (untrusted tar)."""
    root = dest.resolve()
    for member in tar.getmembers():
        parts = PurePosixPath(member.name).parts[1:]  # drop the results dir's own name
        if not parts or any(p in ("..", "") for p in parts) or member.name.startswith("/"):
            continue
        target = root.joinpath(*parts)
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
        elif member.isfile():
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is not None:
                target.write_bytes(source.read())
