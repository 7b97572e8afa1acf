"""Build images with BuildKit through the buildx plugin when there is one, else the engine API.

buildx runs as a standalone binary (the CLI plugin itself, found where the docker CLI finds
plugins, or ``$IMMU_BUILDX``) against ``DOCKER_HOST``: ``--iidfile`` names the result,
``--progress=plain`` streams into the log, and a cancelled run stops the build. ``start``
launches it and returns at once (``immu run`` connects to the engine and the registry while
BuildKit works): this module does not import docker-py. Build secrets
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
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from immu_action.adapters.docker.built import BuildFailed, BuiltImage, LogSink
from immu_action.adapters.registry.auth import docker_config_path, read_docker_config
from immu_action.adapters.signals import start_helper
from immu_action.core.references import parse_reference
from immu_action.errors import BadInput, Cancelled, EngineError
from immu_action.spec import BuildSpec

if TYPE_CHECKING:
    import docker

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
          epoch: int | None = None, buildx: str | None = None) -> BuiltImage:
    """Build ``spec`` with ``buildx`` (the caller's ``find_buildx()``) when there is one, else
    through the engine API."""
    if buildx is not None:
        return start(buildx, spec, labels=labels, tag=tag, log=log, what=what, cache=cache,
                     epoch=epoch).wait(client)
    refuse_without_buildkit(spec, what)
    from immu_action.adapters.docker import engine

    return engine.build(client, spec, labels=labels, tag=tag, log=log, what=what)


def refuse_without_buildkit(spec: BuildSpec, what: str) -> None:
    """Without buildx: a ``BadInput`` naming what in ``spec`` needs BuildKit, if anything."""
    needs = buildkit_only(spec.context / spec.dockerfile)
    if needs or spec.secrets:
        why = needs or f"{what} has build secrets (image.secrets), which need BuildKit"
        raise BadInput(f"{why}: the engine API's legacy builder cannot build it and no buildx "
                       f"plugin was found; {_INSTALL}")


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
            also_tag: str | None = None) -> list[str]:
    """The buildx command line (no secret value in it: secrets are named by env or file).
    The image goes to the engine's store only: the push stage pushes it through the engine.
    (Pushing in the build pushes twice with the docker driver: BuildKit pushes, then buildx
    pushes "with docker" again, whatever the output's options.)"""
    cmd = [buildx, "build", "--progress=plain", "--iidfile", str(iidfile), "--load",
           "--metadata-file", str(iidfile.with_name("metadata.json")),
           "--file", str(spec.context / spec.dockerfile)]
    if spec.target:
        cmd += ["--target", spec.target]
    for name in (tag, also_tag):
        if name:
            cmd += ["--tag", name]
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


def start(buildx: str, spec: BuildSpec, *, labels: Mapping[str, str], tag: str | None,
          log: LogSink, what: str = "image", cache: Cache | None = None,
          epoch: int | None = None, also_tag: str | None = None) -> Running:
    """Launch buildx for ``spec`` and return at once; ``Running.wait`` gives the image. Call
    it from the main thread: buildx dies with the thread that launched it. ``also_tag``: a
    second name for the image (the run's staging tag: its push then needs no tag call)."""
    dockerfile = spec.context / spec.dockerfile
    if not dockerfile.is_file():
        raise BadInput(f"{what}: Dockerfile {dockerfile} does not exist")
    work = tempfile.TemporaryDirectory(prefix="immu-buildx-")
    try:
        iidfile = Path(work.name) / "iid"
        cmd = command(buildx, spec, labels=labels, tag=tag, iidfile=iidfile, cache=cache,
                      epoch=epoch, also_tag=also_tag)
        env = {**_BUILDX_DEFAULTS, **os.environ, **_BUILDX_ENV,
               **_docker_config(Path(work.name), cache)}
        try:
            # In immu's process group (the runner's signals reach it too) and killed with
            # immu (a SIGKILLed immu must not leave a build running).
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env,
                                    preexec_fn=_die_with_parent, text=True, errors="replace",
                                    bufsize=1)
        except OSError as e:
            raise EngineError(f"building {what}: cannot run buildx ({e}); {_INSTALL}") from e
    except BaseException:
        work.cleanup()
        raise
    return Running(proc, work, iidfile, labels={**spec.labels, **labels}, log=log, what=what)


# One platform manifest, no provenance attestation (it would record the build args); no git
# look-ups of buildx's own (for provenance only: immu labels the image from git).
_BUILDX_ENV = {"BUILDX_NO_DEFAULT_ATTESTATIONS": "1", "BUILDX_GIT_INFO": "0"}
# Unless the user chose a rate: the plain log is printed every 25 ms, not every 100 ms (150
# ms when idle), so that the log streams as BuildKit works and the export is seen when it
# ends (the early push starts up to 0.1 s sooner). Its printer still says a step's progress
# at most every 5 s.
_BUILDX_DEFAULTS = {"TTY_DISPLAY_RATE": "25"}


_UNITS = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}  # go-units' decimal sizes


class ExportWatch:
    """Follows buildx's plain progress to learn, while buildx still works, that the image is
    in the engine's store and what is left is the registry cache's export, and whether a
    push then would upload little: the build imported a registry cache (its layers are in
    the registry) and made nothing anew but the build context's files (no RUN, no
    ``COPY --from``, no ``ADD`` of a URL ran; the context is at most ``SMALL_CONTEXT``).
    Otherwise the push and the cache export would upload the same new layers at once, twice
    the bytes of waiting. ``ids``: what the export named the image, the engine's ID among
    them (index or manifest digest on the containerd store, config digest on the classic)."""

    SMALL_CONTEXT = 8_000_000  # bytes of build context sent to BuildKit
    _STEP = re.compile(r"^#(\d+) (.*)$")
    _NAMED = re.compile(r"^(exporting manifest list|exporting manifest|writing image) "
                        r"(sha256:[0-9a-f]{64})\b")
    _NAMING = re.compile(r"^naming to (\S+) done$")
    _ORDER = ("exporting manifest list", "exporting manifest", "writing image")
    _INSTRUCTION = re.compile(r"^\[(?:[^\]]* )?\d+/\d+\] (\w+)(.*)$")
    _CONTEXT = re.compile(r"^transferring context: ([\d.]+)\s*([kMGT]?)B\b")
    _FETCHED = re.compile(r"^(extracting )?sha256:[0-9a-f]{64}")
    _OUTPUT = re.compile(r"^\d+\.\d+ ")

    def __init__(self) -> None:
        self._titles: dict[str, str] = {}
        self._lines: dict[str, list[str]] = {}
        self._export: str | None = None  # the export step's number, once it is DONE
        self._named: dict[str, str] = {}
        self.names: list[str] = []  # the names the export gave the image (as buildx says)
        self.decided = False  # a step followed the export: feed has given its answer

    @property
    def ids(self) -> list[str]:
        return [self._named[kind] for kind in self._ORDER if kind in self._named]

    def feed(self, line: str) -> bool:
        """True at the first line of a step that follows the finished image export, when a
        push then is worth starting (see the class); False from then on."""
        match = None if self.decided else self._STEP.match(line.rstrip("\n"))
        if match is None:
            return False
        number, text = match.groups()
        if number not in self._titles:
            self._titles[number] = text
            self._lines[number] = []
        else:
            self._lines[number].append(text)
        if self._titles[number] == "exporting to image":
            named, naming = self._NAMED.match(text), self._NAMING.match(text)
            if named:
                self._named[named.group(1)] = named.group(2)
            elif naming:
                self.names.append(naming.group(1))
            elif text.startswith("DONE"):
                self._export = number
            return False
        if self._export is None or number == self._export:
            return False
        self.decided = True
        return bool(self._named) and self.little_to_upload()

    def little_to_upload(self) -> bool:
        """The registry cache was imported and only the context's files were made anew."""
        imported, context = False, 0.0
        for number, title in self._titles.items():
            lines = self._lines[number]
            if title.startswith("importing cache manifest from"):
                imported = imported or any(x.startswith("DONE") for x in lines)
            if title.startswith("[internal] load build context") or title.endswith(
                    "load from client"):
                sizes = [self._CONTEXT.match(x) for x in lines]
                context += max((float(m.group(1)) * _UNITS[m.group(2)] for m in sizes
                                if m), default=0.0)
            step = self._INSTRUCTION.match(title)
            if step and self._ran(lines) and not self._from_context(step.group(1).upper(),
                                                                    step.group(2)):
                return False
        return imported and context <= self.SMALL_CONTEXT

    @classmethod
    def _ran(cls, lines: list[str]) -> bool:
        """Whether a step ran: neither CACHED nor only fetched from the imported cache."""
        if "CACHED" in lines:
            return False
        fetched = any(cls._FETCHED.match(x) for x in lines)
        return not fetched or any(cls._OUTPUT.match(x) for x in lines)

    @staticmethod
    def _from_context(instruction: str, rest: str) -> bool:
        """A step whose new layer holds only build-context files (or nothing)."""
        if instruction in ("FROM", "WORKDIR"):
            return True
        if instruction == "COPY":
            return "--from" not in rest
        if instruction == "ADD":
            return "--from" not in rest and not re.search(r"\b(https?|git)://|git@", rest)
        return False


class Running:
    """A buildx build under way: its log streams to the sink from a helper thread."""

    def __init__(self, proc: subprocess.Popen[str], work: tempfile.TemporaryDirectory[str],
                 iidfile: Path, *, labels: Mapping[str, str], log: LogSink, what: str) -> None:
        self._proc, self._work, self._iidfile = proc, work, iidfile
        self._labels, self._log, self._what = dict(labels), log, what
        self.tail: deque[str] = deque(maxlen=25)
        self._watch = ExportWatch()
        self._exported: list[str] = []
        self._milestone = threading.Event()  # the image exported while buildx works, or EOF
        self._held: list[str] | None = None  # lines kept back while the run does other work
        self._log_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name="immu-buildx-log", daemon=True)
        start_helper(self._reader)

    def _read(self) -> None:
        assert self._proc.stdout is not None
        try:
            for line in self._proc.stdout:
                self.tail.append(line.rstrip("\n"))
                with self._log_lock:
                    if self._held is None:
                        self._log(line)
                    else:
                        self._held.append(line)
                if not self._watch.decided and self._watch.feed(line):
                    self._exported = self._watch.ids
                    self._milestone.set()
        finally:
            self._milestone.set()

    def exported(self) -> list[str]:
        """Wait until the image is in the engine's store while buildx still works (exporting
        the cache): what the export named it. [] when buildx ended first (nothing followed
        the export, or the build failed): then ``wait`` gives the image."""
        self._milestone.wait()
        return list(self._exported)

    def working(self) -> bool:
        """Whether buildx still runs (exporting the cache, after ``exported``)."""
        return self._proc.poll() is None

    def hold_log(self) -> None:
        """Keep the rest of buildx's log back (the run's log goes on with other work) until
        ``release_log``."""
        with self._log_lock:
            if self._held is None:
                self._held = []

    def release_log(self) -> None:
        """Write what ``hold_log`` kept back, and the rest of the log as it comes."""
        with self._log_lock:
            held, self._held = self._held or [], None
            for line in held:
                self._log(line)

    def named(self, name: str) -> bool:
        """Whether the export that ``exported`` waited for gave the image ``name`` (buildx's
        log says so; Docker Hub's short names compare as their long ones)."""
        try:
            wanted = parse_reference(name)
            return any(parse_reference(n) == wanted for n in self._watch.names)
        except BadInput:
            return False

    def wait(self, client: docker.DockerClient, *, known: str | None = None) -> BuiltImage:
        """The built image (a failure names the failing step); a cancel stops the build.
        ``known``: the engine's ID for what ``exported`` named (no need to ask again when
        buildx reports the same)."""
        try:
            code = self._proc.wait()
            self._reader.join()
        except (Cancelled, KeyboardInterrupt):
            self.stop()
            raise
        try:
            tail = list(self.tail)
            if code != 0:
                raise BuildFailed(f"building {self._what} failed: {_failure(tail)}\n" +
                                  "\n".join(tail[-10:]))
            image_id = _engine_id(client, self._iidfile, known)
        finally:
            self._work.cleanup()
        if not image_id:
            raise EngineError(f"building {self._what}: the engine does not know the image "
                              "buildx reported\n" + "\n".join(tail))
        return BuiltImage(image_id=image_id, labels=self._labels)

    def stop(self) -> None:
        """Cancel the build (nothing is left running) and forget its files."""
        if self._proc.poll() is None:
            _stop(self._proc)
        self._reader.join(timeout=5)
        self._work.cleanup()


def _engine_id(client: docker.DockerClient, iidfile: Path, known: str | None = None) -> str:
    """The engine's own ID of the built image. buildx's iidfile names the config digest, but
    the containerd store knows an image by its manifest (or index) digest: ask the engine
    (unless ``known``, an ID it gave for this build's export, is among them)."""
    from immu_action.adapters.docker import engine

    meta_file = iidfile.with_name("metadata.json")
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    candidates = [iidfile.read_text().strip() if iidfile.exists() else "",
                  str(meta.get("containerimage.digest", "")),
                  str(meta.get("containerimage.config.digest", ""))]
    if known and known in candidates:
        return known
    return engine.known_id(client, candidates)


def _docker_config(work: Path, cache: Cache | None) -> dict[str, str]:
    """With IMMU_REGISTRY_USERNAME/PASSWORD: the user's docker config plus those credentials
    for the cache's registry (buildx reads credentials from there), else nothing to change.
    Every other registry keeps its own (``auths``, ``credHelpers``, ``credsStore``: a private
    base image elsewhere still pulls), and buildx's builders, the CLI's contexts and plugins
    stay the user's. Where a helper or store would answer for the cache's registry instead of
    ``auths``, a helper of immu's answers it with IMMU_REGISTRY_* (read from its environment:
    the password is written nowhere)."""
    user = os.environ.get("IMMU_REGISTRY_USERNAME", "")
    password = os.environ.get("IMMU_REGISTRY_PASSWORD", "")
    if cache is None or not user or not password:
        return {}
    host = cache.ref.split("/", 1)[0]
    source = docker_config_path(os.environ)
    config = read_docker_config(source)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config["auths"] = {**(config.get("auths") or {}), host: {"auth": auth}}
    helpers = dict(config.get("credHelpers") or {})
    env = {"DOCKER_CONFIG": str(work)}
    if config.get("credsStore") or host in helpers:
        helpers[host] = "immu"
        helper = work / "docker-credential-immu"
        helper.write_text(_HELPER.format(python=sys.executable))
        helper.chmod(0o700)
        env["PATH"] = f"{work}{os.pathsep}{os.environ.get('PATH', '')}"
    if helpers:
        config["credHelpers"] = helpers
    (work / "config.json").write_text(json.dumps(config))
    (work / "config.json").chmod(0o600)
    for name in ("buildx", "contexts", "cli-plugins"):
        if (source.parent / name).is_dir():
            (work / name).symlink_to(source.parent / name)
    return env


# A docker credential helper answering ``get`` with IMMU_REGISTRY_USERNAME/PASSWORD.
_HELPER = """#!{python} -I
import json, os, sys
if sys.argv[1:] != ["get"]:
    sys.exit(0)
sys.stdin.read()
print(json.dumps({{"Username": os.environ["IMMU_REGISTRY_USERNAME"],
                  "Secret": os.environ["IMMU_REGISTRY_PASSWORD"]}}))
"""


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
