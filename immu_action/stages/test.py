"""The test stage: every selected suite in fresh containers of the image under test (by ID
or digest, never a tag), on a private network with its healthy services; JUnit parsed,
everything removed afterwards, on failure and cancellation too."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import wait
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import docker

from immu_action import output
from immu_action.adapters.docker import engine, suites
from immu_action.adapters.docker.sandbox import Sandbox, new_run_id
from immu_action.adapters.docker.suites import WAIT_SLICE_S
from immu_action.adapters.signals import HelperPool, cancellable, start_helper
from immu_action.core.attestation import Shard
from immu_action.core.junit import NotJUnit, junit_files, parse_junit_partial
from immu_action.core.outcome import classify
from immu_action.core.results import RunResult, SuiteResult, TestResults
from immu_action.core.sharding import DURATIONS_PATH, Durations, durations_file, shard_suites
from immu_action.errors import BadInput
from immu_action.spec import ServiceSpec, Spec, SuiteSpec


def select_suites(spec: Spec, names: Sequence[str] | None) -> list[SuiteSpec]:
    """The suites to run, in spec order; unknown names are bad input naming the valid ones."""
    if not names:
        return list(spec.tests.values())
    unknown = [n for n in names if n not in spec.tests]
    if unknown:
        raise BadInput(
            f"{spec.path}: no suite named {', '.join(unknown)} "
            f"(defined: {', '.join(spec.tests)})"
        )
    return [s for n, s in spec.tests.items() if n in names]


_PRINTING = threading.Lock()


def default_parallel() -> int:
    """Suites run at once by default: the runner's CPUs."""
    return max(1, os.cpu_count() or 1)


def run_suites(
    client: docker.DockerClient,
    spec: Spec,
    *,
    image_id: str,
    suite_names: Sequence[str] | None = None,
    results_root: Path,
    log: engine.LogSink = output.log_to_stderr,
    run_id: str | None = None,
    parallel: int | None = None,
    shard: Shard | None = None,
    durations: Durations | None = None,
    warm: Warmup | None = None,
) -> RunResult:
    """Run every selected suite in fresh containers of ``image_id``; always clean up.

    Suites are independent (each its own network and services), so up to ``parallel`` run
    at once, each in a worker thread with a sandbox of its own (termination signals stay with
    the main thread). A parallel suite's output is printed as one folded group when it ends;
    with ``parallel=1`` it streams as it comes. Results keep the spec's order. On a cancel the
    main thread stops new resources, removes everything labelled with the run and waits for
    the workers; a timed-out suite stops only itself.
    """
    durations = durations or Durations()
    chosen = shard_selection(spec, suite_names, shard, durations)
    if shard is not None:
        log(f"shard {shard}: suites {', '.join(s.name for s in chosen) or '(none)'}"
            + (f" (balanced by the durations stored with {durations.source})"
               if durations.source else "") + "\n")
    run_id = warm.run_id if warm is not None else (run_id or new_run_id())
    workers = max(1, min(parallel or default_parallel(), len(chosen)))
    with cancellable(), Sandbox(client, run_id=run_id, log=log) as box:
        if warm is not None:  # services started while the image was built: theirs now
            images = warm.images()
        else:
            images = _service_images(client, spec, chosen, log=log)

        def one(suite: SuiteSpec) -> SuiteResult:
            sink: list[str] = []
            ready = warm.ready_for(suite.name) if warm is not None else None
            own = ready.box if ready is not None else Sandbox(client, run_id=run_id, log=log,
                                                              stop=box.stopped)
            try:
                return _run_suite(own, spec, suite, image_id=image_id, images=images,
                                  results_root=results_root, shard=shard,
                                  durations=durations, ready=ready,
                                  log=log if workers == 1 else sink.append,
                                  replay=None if workers == 1 else sink)
            finally:
                own.cleanup(sweep=False)

        if workers == 1:
            outcomes = tuple(one(suite) for suite in chosen)
        else:
            outcomes = _concurrently(box, one, chosen, workers)
    return RunResult(image_id=image_id, repository=spec.image.repository, suites=outcomes,
                     services=images)


def _concurrently(box: Sandbox, one: Callable[[SuiteSpec], SuiteResult],
                  chosen: Sequence[SuiteSpec], workers: int) -> tuple[SuiteResult, ...]:
    """``one`` per suite on ``workers`` helper threads; the main thread waits in slices so a
    cancel reaches it, then stops the workers' resources before leaving."""
    pool = HelperPool(max_workers=workers, thread_name_prefix="immu-suite")
    futures = [pool.submit(one, suite) for suite in chosen]
    try:
        while not all(f.done() for f in futures):
            wait(futures, timeout=WAIT_SLICE_S)
    except BaseException:
        box.stopped.set()  # no new container or network from here on
        box.cleanup()  # removes every container and network of the run, workers' too
        wait(futures, timeout=30)
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return tuple(f.result() for f in futures)


def shard_selection(spec: Spec, names: Sequence[str] | None, shard: Shard | None,
                    durations: Durations) -> list[SuiteSpec]:
    """The selected suites this run (or this shard of it) runs, in spec order."""
    chosen = select_suites(spec, names)
    if shard is None:
        return chosen
    mine = set(shard_suites({s.name: s.shard for s in chosen}, shard, durations))
    return [s for s in chosen if s.name in mine]


def _service_images(
    client: docker.DockerClient, spec: Spec, chosen: Sequence[SuiteSpec], *,
    log: engine.LogSink, grouped: bool = True,
) -> dict[str, str]:
    """Image ID of every service the chosen suites need (pulled or built once per run).
    ``grouped=False`` (a helper thread, its log buffered): no group markers or fences of
    its own, the buffer is printed inside one later."""
    images: dict[str, str] = {}
    for name in dict.fromkeys(n for s in chosen for n in s.services):
        service: ServiceSpec = spec.services[name]
        if service.build is not None:
            with output.fenced_group(f"Build service {name}") if grouped else nullcontext():
                built = engine.build(
                    client, service.build, labels={"immu.service": name},
                    tag=f"immu-service/{name}:latest", log=log, what=f"service {name}",
                )
            images[name] = built.image_id
        else:
            assert service.image is not None  # the spec guarantees image xor build
            # the pull's messages name user input
            with output.untrusted_output() if grouped else nullcontext():
                images[name] = engine.ensure_image(client, service.image,
                                                   what=f"service {name}", log=log)
    return images


@dataclass(frozen=True)
class Ready:
    """A suite's network with its services started (healthy, or ``problem`` says why not)."""

    box: Sandbox
    network: str
    problem: str | None


class Warmup:
    """Services up while the image under test builds: they do not depend on it.

    On a helper thread, the service images are pulled (or built), then every suite that
    needs services gets, as it would later, a sandbox of its own with a private network and
    fresh service containers, and their health is awaited. A suite waits for its own
    services only (``ready_for``); a healthy one is not waited for again. ``abort`` (the build
    failed, or the run was cancelled) stops it and removes everything. All of it carries
    the run's label, so the test stage's cancel sweep covers it too.
    """

    def __init__(self, client: docker.DockerClient, spec: Spec,
                 chosen: Sequence[SuiteSpec]) -> None:
        self.client, self.spec, self.chosen = client, spec, list(chosen)
        self.run_id = new_run_id()
        self.stop = threading.Event()
        self._ready: dict[str, Ready] = {}
        self._done = {s.name: threading.Event() for s in self.chosen if s.services}
        self._images_done = threading.Event()
        self._boxes: list[Sandbox] = []
        self._log: list[str] = []
        self._images: dict[str, str] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="immu-services", daemon=True)

    @staticmethod
    def needed(chosen: Sequence[SuiteSpec]) -> bool:
        """True when a chosen suite has services (else there is nothing to start early)."""
        return any(s.services for s in chosen)

    def start(self) -> Warmup:
        """Begin on the helper thread (termination signals stay with the main thread)."""
        start_helper(self._thread)
        return self

    def _work(self) -> None:
        try:
            self._images = _service_images(self.client, self.spec, self.chosen,
                                           log=self._log.append, grouped=False)
            self._images_done.set()
            started = []
            for suite in (s for s in self.chosen if s.services):
                box = Sandbox(self.client, run_id=self.run_id, log=self._log.append,
                              stop=self.stop)
                self._boxes.append(box)
                network = box.network(suite.name)
                started.append((suite, box, network, [
                    (self.spec.services[name], suites.start_service(
                        box, suite=suite.name, service=self.spec.services[name],
                        image=self._images[name], network=network))
                    for name in suite.services]))
            for suite, box, network, containers in started:
                problem = None
                try:
                    for service, container in containers:
                        suites.wait_healthy(container, service=service, stop=self.stop)
                except suites.ServiceNotReady as e:
                    problem = str(e)
                self._ready[suite.name] = Ready(box=box, network=network, problem=problem)
                self._done[suite.name].set()
        except BaseException as e:
            self._error = e
        finally:  # nobody waits forever: a waiter finds the error
            self._images_done.set()
            for event in self._done.values():
                event.set()

    def _wait(self, event: threading.Event) -> None:
        while not event.wait(WAIT_SLICE_S):  # in slices: a cancel must reach the main thread
            pass
        if self._error is not None:
            raise self._error

    def images(self) -> dict[str, str]:
        """The service images (pulled or built); prints what the helper logged so far."""
        try:
            self._wait(self._images_done)
        finally:
            if self._log:
                with output.fenced_group("Services (started while the image was built)"):
                    output.log_to_stderr("".join(self._log))
                self._log.clear()
        return self._images

    def ready_for(self, suite: str) -> Ready | None:
        """``suite``'s network with its services healthy (or why not); None: it has none."""
        if suite not in self._done:
            return None
        self._wait(self._done[suite])
        return self._ready[suite]

    def abort(self) -> None:
        """Stop creating, wait for the helper (bounded) and remove what it made."""
        self.stop.set()  # no sandbox of the run creates anything from here on
        self._thread.join(5)  # a pull in flight may not stop at once: leave it be
        for box in self._boxes:
            box.cleanup(sweep=False)
        # and whatever else carries the run's label (a create that was in flight)
        Sandbox(self.client, run_id=self.run_id, log=output.log_to_stderr).cleanup()


def _run_suite(
    box: Sandbox,
    spec: Spec,
    suite: SuiteSpec,
    *,
    image_id: str,
    images: dict[str, str],
    results_root: Path,
    log: engine.LogSink,
    replay: list[str] | None = None,
    shard: Shard | None = None,
    durations: Durations | None = None,
    ready: Ready | None = None,
) -> SuiteResult:
    """One suite: private network, healthy services, the test container, parsed results.
    With ``replay`` (a parallel run) what ``log`` gathered is printed in the suite's group."""
    results_dir = results_root / suite.name
    shutil.rmtree(results_dir, ignore_errors=True)
    network = ready.network if ready is not None else box.network(suite.name)
    try:
        if ready is not None and ready.problem is not None:
            raise suites.ServiceNotReady(ready.problem)
        for name in suite.services if ready is None else ():
            container = suites.start_service(
                box, suite=suite.name, service=spec.services[name], image=images[name],
                network=network,
            )
            suites.wait_healthy(container, service=spec.services[name])
        env = {"IMMU_SUITE": suite.name, "IMMU_RESULTS": suite.results, **suite.env}
        extra: dict[str, bytes] = {}
        if shard is not None:
            env.update({"IMMU_SHARD": str(shard.index), "IMMU_SHARDS": str(shard.total)})
            timings = durations_file(durations or Durations(), suite.name)
            if timings is not None:
                extra[DURATIONS_PATH] = timings
                env["IMMU_DURATIONS"] = DURATIONS_PATH
        # Streamed: the group is open while the suite runs. Parallel: its output gathered
        # in ``replay`` is printed as one group when it ends.
        live = output.fenced_group(f"Suite {suite.name}") if replay is None else nullcontext()
        try:
            with live:
                # The command comes from the (PR author's) spec: printed inside the fence.
                log(f"== suite {suite.name}: {' '.join(suite.command)}\n")
                ran = suites.run_test_container(
                    box, suite=suite, image_id=image_id, network=network,
                    results_dir=results_dir, env=env, log=log, files=extra,
                )
        finally:
            if replay is not None:
                # One suite's group at a time: interleaved markers would open a group inside
                # another suite's fence (where the runner ignores it).
                with _PRINTING, output.fenced_group(f"Suite {suite.name}"):
                    output.log_to_stderr("".join(replay))
    except suites.ServiceNotReady as e:
        return classify(suite=suite.name, exit_code=None, timed_out=False,
                        timeout_s=suite.timeout_s, duration_s=0.0, log_tail="",
                        parsed=TestResults(), problem=str(e))
    finally:
        box.cleanup(sweep=False)
    with output.untrusted_output():  # notes name files the suite wrote
        # (a parallel suite's buffer is printed already: its notes go straight out)
        parsed, files, problem = _parse_results(
            results_dir, log=log if replay is None else output.log_to_stderr)
    return classify(
        suite=suite.name, exit_code=ran.exit_code, timed_out=ran.timed_out,
        timeout_s=suite.timeout_s, duration_s=ran.duration_s, log_tail=ran.log_tail,
        parsed=parsed, junit_files=files, problem=problem, junit=suite.junit,
        results_dir=suite.results,
    )


def _parse_results(
    results_dir: Path, *, log: engine.LogSink
) -> tuple[TestResults, tuple[str, ...], str | None]:
    """Parse every JUnit file a suite left; other XML (coverage...) is skipped with a note.

    A file cut short (the suite was stopped while writing it) still counts the cases it
    completed; the break is reported as the suite's problem.
    """
    parts: list[TestResults] = []
    used: list[str] = []
    problems: list[str] = []
    for path in junit_files([results_dir]):
        try:
            part, broken = parse_junit_partial(path)
        except NotJUnit as e:
            log(f"skipping {path.name}: {e}\n")
            continue
        except BadInput as e:
            problems.append(str(e))
            continue
        parts.append(part)
        used.append(str(path))
        if broken is not None:
            problems.append(str(broken))
    problem = ("unreadable JUnit: " + "; ".join(problems)) if problems else None
    return TestResults.merge(parts), tuple(used), problem
