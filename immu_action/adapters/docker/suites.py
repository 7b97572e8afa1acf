"""Run one test suite in disposable containers: network, healthy services, the test, results.

The test container is created from the exact image ID under test, never from a tag.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import docker
import docker.errors
import requests
from docker.models.containers import Container

from immu_action.adapters.docker.built import LogSink
from immu_action.adapters.docker.engine import retry
from immu_action.adapters.docker.results import copy_results
from immu_action.adapters.docker.sandbox import Sandbox
from immu_action.adapters.signals import start_helper
from immu_action.errors import Cancelled, EngineError
from immu_action.spec import HealthcheckSpec, ServiceSpec, SuiteSpec

LOG_TAIL_LINES = 40
STOP_GRACE_S = 5  # SIGTERM, then SIGKILL after this many seconds (`docker stop -t`)
HEALTH_POLL_S = 0.2  # how often Docker's view of a service is read (an inspect: ~1 ms)
# The spec's health test, run by immu while Docker still says starting: first after
# PROBE_FIRST_S, then each gap PROBE_GROWTH times the last, up to PROBE_MAX_S. An exec costs
# the engine ~50 ms of CPU: probing every 0.25 s would slow the very start-up it waits for
# (two databases initialising on a 2-core runner), so the gaps grow.
PROBE_FIRST_S = 0.25
PROBE_GROWTH = 1.5
PROBE_MAX_S = 1.0
WAIT_SLICE_S = 1.0  # longest single wait of the main thread on a suite (see _wait_exit)


class ServiceNotReady(Exception):
    """A service exited, turned unhealthy or did not become healthy in time."""


@dataclass(frozen=True, kw_only=True)
class SuiteRun:
    """What happened in the container: exit code (None on timeout), log tail, results dir."""

    exit_code: int | None
    timed_out: bool
    log_tail: str
    duration_s: float
    results_dir: Path
    results_found: bool


def healthcheck_config(spec: HealthcheckSpec) -> dict[str, Any]:
    """The Engine API's healthcheck object (durations in nanoseconds)."""
    return {
        "test": list(spec.test),
        "interval": int(spec.interval_s * 1e9),
        "timeout": int(spec.timeout_s * 1e9),
        "retries": spec.retries,
        "start_period": int(spec.start_period_s * 1e9),
    }


def start_service(
    box: Sandbox, *, suite: str, service: ServiceSpec, image: str, network: str
) -> Container:
    """Create and start a service container, reachable on ``network`` by its name."""
    container = box.container(
        image=image,
        name=f"{suite}-{service.name}",
        command=service.command,
        env=service.env,
        network=network,
        alias=service.name,
        healthcheck=healthcheck_config(service.healthcheck) if service.healthcheck else None,
    )
    _start(container, what=f"service {service.name}")
    return container


def _probe_command(service: ServiceSpec) -> list[str] | None:
    """The spec's health test as a command to exec, or None (no test, or NONE)."""
    test = list(service.healthcheck.test) if service.healthcheck else []
    if test[:1] == ["CMD"] and len(test) > 1:
        return test[1:]
    if test[:1] == ["CMD-SHELL"] and len(test) > 1:
        return ["/bin/sh", "-c", test[1]]
    return None


def _probe(container: Container, command: list[str]) -> bool:
    """Run the health test once, now; True when it exits 0 (False on any engine error)."""
    api = container.client.api
    try:
        exec_id = api.exec_create(container.id, command, stdout=False, stderr=False)["Id"]
        api.exec_start(exec_id)
        return bool(api.exec_inspect(exec_id).get("ExitCode") == 0)
    except (docker.errors.APIError, requests.exceptions.RequestException):
        return False


def wait_healthy(container: Container, *, service: ServiceSpec,
                 stop: threading.Event | None = None) -> None:
    """Block until the service is healthy (or running when it has no healthcheck).

    While Docker still says "starting" (its first check comes one ``interval`` after the
    start), the spec's own health test is also run (``probe_times``): the same evidence,
    sooner, so a suite starts soon after its database answers. ``stop`` set (the run is
    being cancelled) ends the wait with ``Cancelled``.
    """
    started = time.monotonic()
    deadline = started + service.startup_timeout_s
    probe = _probe_command(service)
    probes = probe_times()
    next_probe = started + next(probes)
    while True:
        if stop is not None and stop.is_set():
            raise Cancelled(f"run cancelled while service {service.name} was starting")
        state = retry(lambda: _inspect_state(container), what="inspect")
        health = state.get("Health")
        if not state.get("Running"):
            raise ServiceNotReady(
                f"service {service.name} exited with code {state.get('ExitCode')} before it was "
                f"ready; its log ends with:\n{_tail(container)}"
            )
        if health is None or health.get("Status") == "healthy":
            return
        if probe is not None and time.monotonic() >= next_probe:
            if _probe(container, probe):
                return
            next_probe = time.monotonic() + next(probes)
        if health.get("Status") == "unhealthy":
            raise ServiceNotReady(
                f"service {service.name} is unhealthy: {_last_probe(health)}\n{_tail(container)}"
            )
        if time.monotonic() > deadline:
            raise ServiceNotReady(
                f"service {service.name} did not become healthy within "
                f"{service.startup_timeout_s:g}s (startup-timeout); last health check: "
                f"{_last_probe(health)}\n{_tail(container)}"
            )
        wake = min(HEALTH_POLL_S, next_probe - time.monotonic()) if probe is not None \
            else HEALTH_POLL_S
        time.sleep(max(0.01, wake))


def probe_times() -> Iterator[float]:
    """Gaps before each run of the spec's health test: 0.25 s, growing 1.5x, at most 1 s."""
    gap = PROBE_FIRST_S
    while True:
        yield gap
        gap = min(gap * PROBE_GROWTH, PROBE_MAX_S)


def create_test_container(
    box: Sandbox,
    *,
    suite: SuiteSpec,
    image_id: str,
    network: str,
    env: Mapping[str, str],
    files: Mapping[str, bytes] | None = None,
) -> Container:
    """A fresh container of ``image_id`` for the suite's command, created (not started) with
    its results directory; ``files`` (absolute path -> bytes, readable by any user) are put
    in. Created while the suite's services start, so it starts the moment they are healthy."""
    container = box.container(
        image=image_id,
        name=f"{suite.name}-test",
        command=suite.command,
        env=env,
        network=network,
        alias="sut",
        workdir=suite.workdir,
        user=suite.user,
    )
    _make_results_dir(container, suite.results)
    if files:
        _put_files(container, files)
    return container


def run_test_container(container: Container, *, suite: SuiteSpec, results_dir: Path,
                       log: LogSink) -> SuiteRun:
    """Start the suite's created container, stream its output, wait (bounded by the suite's
    timeout) and collect its results."""
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    started = time.monotonic()
    _start(container, what=f"suite {suite.name}")
    follower = threading.Thread(target=_follow_logs, args=(container, tail, log), daemon=True)
    start_helper(follower)  # a cancel must interrupt the main thread's wait, not this stream
    exit_code, timed_out = _wait(container, timeout_s=suite.timeout_s)
    duration = time.monotonic() - started
    follower.join(timeout=5)
    found = copy_results(container, suite.results, results_dir)
    return SuiteRun(
        exit_code=exit_code,
        timed_out=timed_out,
        log_tail="\n".join(tail),
        duration_s=duration,
        results_dir=results_dir,
        results_found=found,
    )


def _wait(container: Container, *, timeout_s: float) -> tuple[int | None, bool]:
    """Wait for exit; past ``timeout_s`` stop it (SIGTERM, then SIGKILL)."""
    code = _wait_exit(container, timeout_s)
    if code is not None:
        return code, False
    try:
        container.stop(timeout=STOP_GRACE_S)
        container.wait(timeout=STOP_GRACE_S + 30)
    except (docker.errors.APIError, requests.exceptions.RequestException):
        _quiet_kill(container)
    return None, True


def _wait_exit(container: Container, timeout_s: float) -> int | None:
    """The exit code, or None when ``timeout_s`` passed (or the engine stopped answering).

    Waits in slices of ``WAIT_SLICE_S``: a cancel's Python handler only runs between
    instructions of the main thread, and a signal that lands just before a socket read
    starts (or in a thread the kernel picked) would otherwise wait for the whole suite.
    """
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            status = container.wait(timeout=max(0.05, min(WAIT_SLICE_S, left)))
            return int(status.get("StatusCode", -1))
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as e:
            if not isinstance(e, requests.exceptions.ReadTimeout) \
                    and "timed out" not in str(e).lower():
                return None  # the engine went away: stop (or kill) it as for a timeout
    return None


def _quiet_kill(container: Container) -> None:
    with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
        container.kill()


def _start(container: Container, *, what: str) -> None:
    try:
        container.start()
    except docker.errors.APIError as e:
        # e.g. the command is not in the image: the user's to fix, reported with the suite
        raise ServiceNotReady(f"{what} could not start: {e.explanation}") from e


def _inspect_state(container: Container) -> dict[str, Any]:
    container.reload()
    return dict(container.attrs.get("State") or {})


def _last_probe(health: Mapping[str, Any]) -> str:
    probes = health.get("Log") or []
    if not probes:
        return "no check has completed yet"
    last = probes[-1]
    output = " ".join(str(last.get("Output", "")).split())[:300]
    return f"exit {last.get('ExitCode')}: {output or '(no output)'}"


def _tail(container: Container, lines: int = 20) -> str:
    try:
        raw = container.logs(tail=lines)
    except (docker.errors.APIError, requests.exceptions.RequestException):
        return "(log unavailable)"
    return bytes(raw).decode("utf-8", "replace").rstrip()


def _follow_logs(container: Container, tail: deque[str], log: LogSink) -> None:
    """Stream the container's output to ``log`` as it comes, keeping the last lines."""
    pending = ""
    try:
        for chunk in container.logs(stream=True, follow=True):
            pending += bytes(chunk).decode("utf-8", "replace")
            *lines, pending = pending.split("\n")
            for line in lines:
                tail.append(line)
                log(line + "\n")
    except (docker.errors.APIError, requests.exceptions.RequestException):
        pass  # the container went away (timeout, cancellation): the tail so far is kept
    if pending:
        tail.append(pending)
        log(pending + "\n")


def _put_files(container: Container, files: Mapping[str, bytes]) -> None:
    """Files (and their missing directories) into the created container, mode 0644/0755."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = sorted({str(p) for f in files for p in PurePosixPath(f).parents
                       if str(p) != "/"})
        for d in dirs:
            info = tarfile.TarInfo(d.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, data in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    try:
        container.put_archive("/", buf.getvalue())
    except docker.errors.APIError as e:
        raise EngineError(f"putting {', '.join(files)} into the container failed: "
                          f"{e.explanation}") from e


def _make_results_dir(container: Container, path: str) -> None:
    """Create the results directory (mode 1777, so any image user can write) before start.

    ``put_archive`` needs an existing parent, so climb until one exists and create the
    missing directories below it in one archive.
    """
    target = PurePosixPath(path)
    base = target.parent
    while True:
        chain = [d for d in [*reversed(target.parents), target] if len(d.parts) > len(base.parts)]
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for d in chain:
                info = tarfile.TarInfo(str(d.relative_to(base)))
                info.type = tarfile.DIRTYPE
                info.mode = 0o1777 if d == target else 0o755
                tar.addfile(info)
        try:
            container.put_archive(str(base), buf.getvalue())
            return
        except docker.errors.NotFound as e:
            if base == base.parent:
                raise EngineError(f"cannot create results directory {path}") from e
            base = base.parent
        except docker.errors.APIError as e:
            raise EngineError(f"creating results directory {path} failed: {e.explanation}") from e
