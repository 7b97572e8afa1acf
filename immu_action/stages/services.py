"""Service containers for the test stage: images pulled or built once per run, then a fresh
set per suite on the suite's own private network, started early and awaited healthy.

Services do not depend on the image under test, so ``Warmup`` starts them while it builds
(or is pushed, or pulled): each suite's set on a helper thread of its own, so one slow
database never holds up another suite. Nothing is shared between suites.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import docker
from docker.models.containers import Container

from immu_action import output
from immu_action.adapters.docker import engine, suites
from immu_action.adapters.docker.built import LogSink
from immu_action.adapters.docker.sandbox import Sandbox, new_run_id
from immu_action.adapters.docker.suites import WAIT_SLICE_S
from immu_action.adapters.signals import start_helper
from immu_action.errors import Cancelled
from immu_action.spec import ServiceSpec, Spec, SuiteSpec

# Suites whose services start early, per suite running at once: enough to keep every worker
# fed, few enough that twenty suites with a database each do not start twenty at once.
AHEAD_PER_WORKER = 2
ABORT_WAIT_S = 5.0  # how long an abort waits for the helpers before removing what they made


def service_images(
    client: docker.DockerClient, spec: Spec, chosen: Sequence[SuiteSpec], *,
    log: LogSink, grouped: bool = True,
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
class Started:
    """A suite's private network with its service containers started, not yet awaited
    (``problem``: one of them could not even start)."""

    box: Sandbox
    network: str
    services: tuple[tuple[ServiceSpec, Container], ...]
    problem: str | None = None


def start_services(box: Sandbox, spec: Spec, suite: SuiteSpec,
                   images: dict[str, str]) -> Started:
    """The suite's network, and a fresh container of each of its services started on it."""
    network = box.network(suite.name)
    started: list[tuple[ServiceSpec, Container]] = []
    for name in suite.services:
        service = spec.services[name]
        try:
            container = suites.start_service(box, suite=suite.name, service=service,
                                             image=images[name], network=network)
        except suites.ServiceNotReady as e:
            return Started(box, network, tuple(started), str(e))
        started.append((service, container))
    return Started(box, network, tuple(started))


def await_healthy(started: Started, *, stop: threading.Event | None = None) -> str | None:
    """Wait until every service of ``started`` is healthy: None, or why one is not."""
    if started.problem is not None:
        return started.problem
    try:
        for service, container in started.services:
            suites.wait_healthy(container, service=service, stop=stop)
    except suites.ServiceNotReady as e:
        return str(e)
    return None


class Warmup:
    """Services up while the image under test builds.

    On a helper thread the service images are pulled (or built); then each of the first
    suites that need services (``ahead`` of them, in the order the workers take them) gets,
    on a thread of its own, a sandbox with a private network and fresh service containers,
    and their health is awaited. A suite waits for its own services only; one beyond
    ``ahead`` starts its own when a worker takes it. ``abort`` (the build failed, or the run
    was cancelled) stops it all and removes everything. All of it carries the run's label,
    so the test stage's cancel sweep covers it too.
    """

    def __init__(self, client: docker.DockerClient, spec: Spec,
                 chosen: Sequence[SuiteSpec], *, ahead: int | None = None) -> None:
        self.client, self.spec, self.chosen = client, spec, list(chosen)
        self.run_id = new_run_id()
        self.stop = threading.Event()
        needing = [s for s in self.chosen if s.services]
        self.warmed = needing if ahead is None else needing[:max(0, ahead)]
        self._started = {s.name: threading.Event() for s in self.warmed}
        self._healthy = {s.name: threading.Event() for s in self.warmed}
        self._sets: dict[str, Started] = {}
        self._problems: dict[str, str | None] = {}
        self._errors: dict[str, BaseException] = {}
        self._images_done = threading.Event()
        self._images: dict[str, str] = {}
        self._error: BaseException | None = None
        self._boxes: list[Sandbox] = []
        self._log: list[str] = []
        self._threads = [threading.Thread(target=self._images_then_suites, daemon=True,
                                          name="immu-services")]

    @staticmethod
    def needed(chosen: Sequence[SuiteSpec]) -> bool:
        """True when a chosen suite has services (else there is nothing to start early)."""
        return any(s.services for s in chosen)

    def start(self) -> Warmup:
        """Begin on a helper thread (termination signals stay with the main thread)."""
        start_helper(self._threads[0])
        return self

    def _images_then_suites(self) -> None:
        try:
            self._images = service_images(self.client, self.spec, self.chosen,
                                          log=self._log.append, grouped=False)
        except BaseException as e:
            self._error = e  # every waiter finds it
            for event in (*self._started.values(), *self._healthy.values()):
                event.set()
            return
        finally:
            self._images_done.set()
        for suite in self.warmed:
            if self.stop.is_set():
                self._errors[suite.name] = Cancelled("run cancelled: services not started")
                self._started[suite.name].set()
                self._healthy[suite.name].set()
                continue
            # (a helper's threads inherit its blocked termination signals)
            thread = threading.Thread(target=self._suite, args=(suite,), daemon=True,
                                      name=f"immu-services-{suite.name}")
            thread.start()
            self._threads.append(thread)

    def _suite(self, suite: SuiteSpec) -> None:
        try:
            box = Sandbox(self.client, run_id=self.run_id, log=self._log.append,
                          stop=self.stop)
            self._boxes.append(box)
            started = start_services(box, self.spec, suite, self._images)
            self._sets[suite.name] = started
            self._started[suite.name].set()
            self._problems[suite.name] = await_healthy(started, stop=self.stop)
        except BaseException as e:
            self._errors[suite.name] = e
        finally:  # nobody waits forever: a waiter finds the error
            self._started[suite.name].set()
            self._healthy[suite.name].set()

    def _wait(self, event: threading.Event, suite: str | None = None) -> None:
        while not event.wait(WAIT_SLICE_S):  # in slices: a cancel must reach the main thread
            pass
        error = self._error or (self._errors.get(suite) if suite else None)
        if error is not None:
            raise error

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

    def started_for(self, suite: str) -> Started | None:
        """``suite``'s network with its services started; None: they were not started early
        (the suite has none, or it is beyond ``ahead``)."""
        if suite not in self._started:
            return None
        self._wait(self._started[suite], suite)
        return self._sets[suite]

    def healthy(self, suite: str) -> str | None:
        """Wait for ``suite``'s early services to be healthy: None, or why one is not."""
        self._wait(self._healthy[suite], suite)
        return self._problems[suite]

    def abort(self) -> None:
        """Stop creating, wait for the helpers (bounded) and remove what they made."""
        self.stop.set()  # no sandbox of the run creates anything from here on
        deadline = time.monotonic() + ABORT_WAIT_S
        self._threads[0].join(ABORT_WAIT_S)  # the one that starts the others, first
        for thread in self._threads[1:]:
            # a pull or a create in flight may not stop at once: leave it be
            thread.join(max(0.0, deadline - time.monotonic()))
        for box in self._boxes:
            box.cleanup(sweep=False)
        # and whatever else carries the run's label (a create that was in flight)
        Sandbox(self.client, run_id=self.run_id, log=output.log_to_stderr).cleanup()
