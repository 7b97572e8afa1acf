"""Build images with BuildKit through the buildx plugin when there is one, else the engine API.

buildx runs as a standalone binary (the CLI plugin itself, found where the docker CLI finds
plugins, or ``$IMMU_BUILDX``) against ``DOCKER_HOST``: ``--iidfile`` names the result,
``--progress=plain`` streams into the log, and a cancelled run stops the build. Build secrets
reach ``RUN --mount=type=secret`` only (never the image, its history, labels, build args or the
log); the registry cache is imported on every build and exported when asked (``mode=max``
where the engine can, inline on the classic image store). Without buildx, a Dockerfile that
needs BuildKit is refused up front with the line at fault and how to get buildx.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import docker

from immu_action.adapters.docker import engine
from immu_action.adapters.docker.engine import BuildFailed, BuiltImage, LogSink
from immu_action.errors import BadInput, Cancelled, EngineError
from immu_action.spec import BuildSpec

PLUGIN_DIRS = ("~/.docker/cli-plugins", "/usr/local/lib/docker/cli-plugins",
               "/usr/local/libexec/docker/cli-plugins", "/usr/lib/docker/cli-plugins",
               "/usr/libexec/docker/cli-plugins")
BUILDKIT_ONLY = (
    (re.compile(r"^\s*RUN\s+.*--mount[=\s]", re.I), "RUN --mount"),
    (re.compile(r"^\s*(COPY|ADD)\s+.*--(chmod|link|parents|exclude)[=\s]", re.I),
     "COPY/ADD --chmod/--link"),
    (re.compile(r"<<-?\s*[\"']?[A-Za-z_]\w*[\"']?\s*$"), "a heredoc"),
    (re.compile(r"\$\{?(BUILDPLATFORM|TARGETPLATFORM|TARGETOS|TARGETARCH)\b"),
     "$BUILDPLATFORM/$TARGETPLATFORM"),
    (re.compile(r"^\s*#\s*syntax\s*=", re.I), "a # syntax= directive"),
    (re.compile(r"^\s*RUN\s+.*--(network|security)[=\s]", re.I), "RUN --network/--security"),
)
_INSTALL = ("install the buildx plugin (Debian/Ubuntu: apt-get install docker-buildx; Docker's "
            "packages: docker-buildx-plugin) or point IMMU_BUILDX at its binary")


@dataclass(frozen=True, kw_only=True)
class Cache:
    """Where the build cache lives and whether this build writes it."""

    ref: str
    export: bool
    mode: str = "max"  # "max": every stage's layers to ``ref``; "inline": in the image itself


def find_buildx(environ: Mapping[str, str] | None = None) -> str | None:
    """The buildx binary: ``$IMMU_BUILDX`` (``off`` for none), else where the CLI looks."""
    env = os.environ if environ is None else environ
    chosen = env.get("IMMU_BUILDX", "").strip()
    if chosen:
        if chosen.lower() in ("off", "none", "false", "0"):
            return None
        if not os.access(chosen, os.X_OK):
            raise BadInput(f"IMMU_BUILDX={chosen}: not an executable buildx binary "
                           "(or `off` to build through the engine API)")
        return chosen
    dirs = list(PLUGIN_DIRS)
    if env.get("DOCKER_CONFIG"):
        dirs.insert(0, f"{env['DOCKER_CONFIG']}/cli-plugins")
    for directory in dirs:
        candidate = Path(os.path.expanduser(directory)) / "docker-buildx"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("docker-buildx")


def buildkit_only(dockerfile: Path) -> str | None:
    """``Dockerfile:LINE uses X`` for the first instruction the legacy builder cannot run."""
    try:
        lines = dockerfile.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for number, line in enumerate(lines, 1):
        for pattern, what in BUILDKIT_ONLY:
            if pattern.search(line):
                return f"{dockerfile.name}:{number} uses {what}"
    return None


def build(client: docker.DockerClient, spec: BuildSpec, *, labels: Mapping[str, str],
          tag: str | None, log: LogSink, what: str = "image", cache: Cache | None = None,
          epoch: int | None = None, buildx: str | None = None,
          push: str | None = None) -> BuiltImage:
    """Build ``spec`` with ``buildx`` (the caller's ``find_buildx()``) when there is one, else
    through the engine API. ``push`` (buildx only): BuildKit pushes the image to this
    reference itself, before it exports the cache (only this name is pushed; ``tag`` is
    then set through the engine)."""
    if buildx is not None:
        return _buildx(client, buildx, spec, labels=labels, tag=tag, log=log, what=what,
                       cache=cache, epoch=epoch, push=push)
    needs = buildkit_only(spec.context / spec.dockerfile)
    if needs or spec.secrets:
        why = needs or f"{what} has build secrets (image.secrets), which need BuildKit"
        raise BadInput(f"{why}: the engine API's legacy builder cannot build it and no buildx "
                       f"plugin was found; {_INSTALL}")
    return engine.build(client, spec, labels=labels, tag=tag, log=log, what=what)


def _secret_args(spec: BuildSpec) -> list[str]:
    args = []
    for sid, source in spec.secrets.items():
        if source.env is not None:
            if source.env not in os.environ:
                raise BadInput(f"image.secrets.{sid}: environment variable {source.env} is "
                               "not set (set it in the job's env:, from a secret)")
            args += ["--secret", f"id={sid},env={source.env}"]
        elif source.file is not None:
            if not source.file.is_file():
                raise BadInput(f"image.secrets.{sid}: file {source.file} does not exist")
            args += ["--secret", f"id={sid},src={source.file}"]
    return args


def command(buildx: str, spec: BuildSpec, *, labels: Mapping[str, str], tag: str | None,
            iidfile: Path, cache: Cache | None, epoch: int | None,
            push: str | None = None) -> list[str]:
    """The buildx command line (no secret value in it: secrets are named by env or file).
    With ``push`` the image is stored in the engine and pushed under that name alone: every
    name of the image exporter is pushed, and the local ``tag`` must never reach the
    registry (it could be a promoted tag's name)."""
    # (the docker driver's image exporter keeps the image in the engine's store either way)
    output = ["--output", "type=image,push=true"] if push else ["--load"]
    cmd = [buildx, "build", "--progress=plain", "--iidfile", str(iidfile), *output,
           "--metadata-file", str(iidfile.with_name("metadata.json")),
           "--file", str(spec.context / spec.dockerfile)]
    if spec.target:
        cmd += ["--target", spec.target]
    if push or tag:
        cmd += ["--tag", push or str(tag)]
    for key, value in spec.build_args.items():
        cmd += ["--build-arg", f"{key}={value}"]
    if epoch is not None:  # BuildKit stamps the config and history with it: reproducible IDs
        cmd += ["--build-arg", f"SOURCE_DATE_EPOCH={epoch}"]
    for key, value in {**spec.labels, **labels}.items():
        cmd += ["--label", f"{key}={value}"]
    if cache is not None:
        cmd += ["--cache-from", f"type=registry,ref={cache.ref}"]
        if cache.export:
            cmd += ["--cache-to", f"type=registry,ref={cache.ref},mode=max"
                    if cache.mode == "max" else "type=inline"]
    return [*cmd, *_secret_args(spec), str(spec.context)]


def _buildx(client: docker.DockerClient, buildx: str, spec: BuildSpec, *,
            labels: Mapping[str, str], tag: str | None, log: LogSink, what: str,
            cache: Cache | None, epoch: int | None, push: str | None) -> BuiltImage:
    dockerfile = spec.context / spec.dockerfile
    if not dockerfile.is_file():
        raise BadInput(f"{what}: Dockerfile {dockerfile} does not exist")
    with tempfile.TemporaryDirectory(prefix="immu-buildx-") as work:
        iidfile = Path(work) / "iid"
        cmd = command(buildx, spec, labels=labels, tag=tag, iidfile=iidfile, cache=cache,
                      epoch=epoch, push=push)
        tail = _run(cmd, log=log, what=what,
                    extra_env=_docker_config(Path(work), cache, push))
        image_id = _engine_id(client, iidfile)
    if not image_id:
        raise EngineError(f"building {what}: the engine does not know the image buildx "
                          "reported\n" + "\n".join(tail))
    if push and tag:
        _tag(client, image_id, tag)
    return BuiltImage(image_id=image_id, labels={**spec.labels, **labels})


def _tag(client: docker.DockerClient, image_id: str, ref: str) -> None:
    repository, _, tag = ref.rpartition(":")
    try:
        client.api.tag(image_id, repository, tag)
    except docker.errors.DockerException as e:
        raise EngineError(f"tagging the built image {ref} failed: {e}") from e


def _engine_id(client: docker.DockerClient, iidfile: Path) -> str:
    """The engine's own ID of the built image. buildx's iidfile names the config digest, but
    the containerd store knows an image by its manifest (or index) digest: ask the engine."""
    meta_file = iidfile.with_name("metadata.json")
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    candidates = [iidfile.read_text().strip() if iidfile.exists() else "",
                  str(meta.get("containerimage.digest", "")),
                  str(meta.get("containerimage.config.digest", ""))]
    for candidate in filter(None, candidates):
        try:
            return str(client.api.inspect_image(candidate)["Id"])
        except docker.errors.NotFound:
            continue
        except docker.errors.DockerException as e:
            raise EngineError(f"inspecting the built image failed: {e}") from e
    return ""


def _docker_config(work: Path, cache: Cache | None, push: str | None) -> dict[str, str]:
    """With IMMU_REGISTRY_USERNAME/PASSWORD, a docker config holding them for the registry
    of the cache and of the push (buildx reads credentials from there); else the user's own
    config."""
    user = os.environ.get("IMMU_REGISTRY_USERNAME", "")
    password = os.environ.get("IMMU_REGISTRY_PASSWORD", "")
    hosts = {ref.split("/", 1)[0] for ref in (cache.ref if cache else None, push) if ref}
    if not hosts or not user or not password:
        return {}
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (work / "config.json").write_text(json.dumps({"auths": {h: {"auth": auth} for h in hosts}}))
    (work / "config.json").chmod(0o600)
    return {"DOCKER_CONFIG": str(work)}


def _run(cmd: list[str], *, log: LogSink, what: str,
         extra_env: Mapping[str, str]) -> list[str]:
    """Run buildx, streaming its log; a failure names the failing step; cancel stops it."""
    tail: deque[str] = deque(maxlen=25)
    # One platform manifest, no provenance attestation (it would record the build args); no
    # git look-ups of buildx's own (for provenance only: immu labels the image from git).
    env = {**os.environ, "BUILDX_NO_DEFAULT_ATTESTATIONS": "1", "BUILDX_GIT_INFO": "0",
           **extra_env}
    try:
        # In immu's process group (the runner's signals reach it too) and killed with immu
        # (a SIGKILLed immu must not leave a build running).
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, preexec_fn=_die_with_parent,
                                text=True, errors="replace", bufsize=1)
    except OSError as e:
        raise EngineError(f"building {what}: cannot run buildx ({e}); {_INSTALL}") from e
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            log(line)
        code = proc.wait()
    except (Cancelled, KeyboardInterrupt):
        _stop(proc)
        raise
    if code != 0:
        raise BuildFailed(f"building {what} failed: {_failure(list(tail))}\n" + "\n".join(
            list(tail)[-10:]))
    return list(tail)


def _die_with_parent() -> None:
    """In the child, before exec: the kernel sends SIGKILL when immu dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _stop(proc: subprocess.Popen[str]) -> None:
    """Cancel the build: buildx cancels its solve on SIGINT; kill it if it lingers."""
    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _failure(tail: list[str]) -> str:
    """buildx's own ``ERROR: ...`` line (the failing step and why), else the last line."""
    errors = [line for line in tail if line.startswith("ERROR:") or " ERROR: " in line]
    return (errors[-1] if errors else (tail[-1] if tail else "buildx failed")).strip()


def store_is_containerd(client: docker.DockerClient) -> bool:
    """True on the containerd image store (an image ID is then its manifest/index digest)."""
    try:
        status = client.info().get("DriverStatus") or []
    except docker.errors.DockerException as e:
        raise EngineError(f"reading the engine's info failed: {e}") from e
    return any(k == "driver-type" and "containerd" in str(v) for k, v in status)


