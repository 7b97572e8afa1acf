"""The test stage: every selected suite in fresh containers of the image under test (by ID
or digest, never a tag), on a private network with its healthy services; JUnit parsed,
everything removed afterwards, on failure and cancellation too."""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import wait
from contextlib import nullcontext
from pathlib import Path

import docker

from immu_action import output
from immu_action.adapters.docker import suites
from immu_action.adapters.docker.built import LogSink
from immu_action.adapters.docker.sandbox import Sandbox, new_run_id
from immu_action.adapters.docker.suites import WAIT_SLICE_S
from immu_action.adapters.pool import HelperPool
from immu_action.adapters.signals import cancellable
from immu_action.core.junit import NotJUnit, junit_files, parse_junit_partial
from immu_action.core.outcome import classify
from immu_action.core.results import RunResult, SuiteResult, TestResults
from immu_action.core.sharding import (
    DURATIONS_PATH,
    Durations,
    Shard,
    durations_file,
    shard_suites,
)
from immu_action.core.timings import Timeline
from immu_action.errors import BadInput
from immu_action.spec import Spec, SuiteSpec
from immu_action.stages.services import (
    Started,
    Warmup,
    await_healthy,
    service_images,
    start_services,
)


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
    log: LogSink = output.log_to_stderr,
    run_id: str | None = None,
    parallel: int | None = None,
    shard: Shard | None = None,
    durations: Durations | None = None,
    warm: Warmup | None = None,
    timeline: Timeline | None = None,
) -> RunResult:
    """Run every selected suite in fresh containers of ``image_id``; always clean up.

    Suites are independent (each its own network and services), so up to ``parallel`` run
    at once, each in a worker thread with a sandbox of its own (termination signals stay with
    the main thread). A parallel suite's output is printed as one folded group when it ends;
    with ``parallel=1`` it streams as it comes. Results keep the spec's order. On a cancel the
    main thread stops new resources, removes everything labelled with the run and waits for
    the workers; a timed-out suite stops only itself. ``timeline`` gets each suite's events.
    """
    timeline = timeline or Timeline()
    durations = durations or Durations()
    chosen = shard_selection(spec, suite_names, shard, durations)
    if shard is not None:
        log(f"shard {shard}: suites {', '.join(s.name for s in chosen) or '(none)'}"
            + (f" (balanced by the durations stored with {durations.source})"
               if durations.source else "") + "\n")
    run_id = warm.run_id if warm is not None else (run_id or new_run_id())
    workers = suite_workers(parallel, len(chosen))
    with cancellable(), Sandbox(client, run_id=run_id, log=log) as box:
        if warm is not None:  # services started while the image was built: theirs now
            images = warm.images()
        else:
            images = service_images(client, spec, chosen, log=log)

        def one(suite: SuiteSpec) -> SuiteResult:
            sink: list[str] = []
            early = warm.started_for(suite.name) if warm is not None else None
            own = early.box if early is not None else Sandbox(client, run_id=run_id, log=log,
                                                              stop=box.stopped)
            try:
                if early is None:
                    up = start_services(own, spec, suite, images)
                    healthy = functools.partial(await_healthy, up, stop=box.stopped)
                else:
                    assert warm is not None
                    up, healthy = early, functools.partial(warm.healthy, suite.name)
                return _run_suite(own, suite, image_id=image_id, up=up, healthy=healthy,
                                  results_root=results_root, shard=shard,
                                  durations=durations, timeline=timeline,
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


def suite_workers(parallel: int | None, suites_count: int) -> int:
    """How many suites run at once: ``parallel`` (default: the CPUs), at most one per suite."""
    return max(1, min(parallel or default_parallel(), suites_count))


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


def _run_suite(
    box: Sandbox,
    suite: SuiteSpec,
    *,
    image_id: str,
    up: Started,
    healthy: Callable[[], str | None],
    results_root: Path,
    log: LogSink,
    replay: list[str] | None = None,
    shard: Shard | None = None,
    durations: Durations | None = None,
    timeline: Timeline,
) -> SuiteResult:
    """One suite: its test container created on the network where its services are
    starting (``up``), started once ``healthy`` says they are, then the results parsed.
    With ``replay`` (a parallel run) what ``log`` gathered is printed in the suite's group."""
    results_dir = results_root / suite.name
    shutil.rmtree(results_dir, ignore_errors=True)
    try:
        env = {"IMMU_SUITE": suite.name, "IMMU_RESULTS": suite.results, **suite.env}
        extra: dict[str, bytes] = {}
        if shard is not None:
            env.update({"IMMU_SHARD": str(shard.index), "IMMU_SHARDS": str(shard.total)})
            timings = durations_file(durations or Durations(), suite.name)
            if timings is not None:
                extra[DURATIONS_PATH] = timings
                env["IMMU_DURATIONS"] = DURATIONS_PATH
        # Created while the services start: it starts the moment they are healthy.
        container = suites.create_test_container(box, suite=suite, image_id=image_id,
                                                 network=up.network, env=env, files=extra)
        problem = healthy()
        if problem is not None:
            raise suites.ServiceNotReady(problem)
        if up.services:
            timeline.suite(suite.name, "services_ready")
        # Streamed: the group is open while the suite runs. Parallel: its output gathered
        # in ``replay`` is printed as one group when it ends.
        live = output.fenced_group(f"Suite {suite.name}") if replay is None else nullcontext()
        try:
            with live:
                # The command comes from the (PR author's) spec: printed inside the fence.
                log(f"== suite {suite.name}: {' '.join(suite.command)}\n")
                timeline.suite(suite.name, "started")
                ran = suites.run_test_container(container, suite=suite,
                                                results_dir=results_dir, log=log)
                timeline.suite(suite.name, "ended")
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
    results_dir: Path, *, log: LogSink
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
