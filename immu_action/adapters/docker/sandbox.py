"""Disposable resources of one run: labelled containers and networks, always removed.

Everything carries ``immu.run=<run id>`` (plus the owning pid and host, so ``immu gc``
can tell leftovers of killed runs from live ones) and is removed when the sandbox
exits, on success, failure, Ctrl-C or SIGTERM; ``IMMU_KEEP=1`` keeps it for debugging.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import docker
import docker.errors
import requests
from docker.models.containers import Container

from immu_action.adapters.docker.built import LogSink
from immu_action.adapters.docker.engine import retry
from immu_action.adapters.pool import HelperPool
from immu_action.adapters.signals import deferred, shielded
from immu_action.errors import Cancelled, EngineError

RUN_LABEL = "immu.run"
PID_LABEL = "immu.pid"
HOST_LABEL = "immu.host"
MAX_PARALLEL_REMOVALS = 8


def new_run_id() -> str:
    """A short unique run ID (also used in resource names)."""
    return uuid.uuid4().hex[:12]


def run_labels(run_id: str) -> dict[str, str]:
    """Labels that mark a resource as this run's."""
    return {RUN_LABEL: run_id, PID_LABEL: str(os.getpid()), HOST_LABEL: socket.gethostname()}


def keep_requested() -> bool:
    """``IMMU_KEEP=1`` keeps containers and networks for debugging."""
    return os.environ.get("IMMU_KEEP", "") not in ("", "0", "false")


class Sandbox:
    """Creates containers and networks for one run and removes them all on exit."""

    def __init__(self, client: docker.DockerClient, *, run_id: str, log: LogSink,
                 stop: threading.Event | None = None) -> None:
        self.client = client
        self.run_id = run_id
        self.labels = run_labels(run_id)
        self.log = log
        # Set when the run is cancelled: sandboxes sharing it create nothing more.
        self.stopped = stop or threading.Event()
        self._containers: list[str] = []
        self._networks: list[str] = []

    def _check(self, what: str) -> None:
        if self.stopped.is_set():
            raise Cancelled(f"run cancelled: {what} not created")

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def network(self, name: str) -> str:
        """Create a private bridge network; returns its name."""
        full = f"immu-{self.run_id}-{name}"
        self._check(f"network {full}")
        with deferred():  # a signal between create and append would leak the network
            try:
                net = self.client.networks.create(full, driver="bridge", labels=self.labels)
            except docker.errors.APIError as e:
                raise EngineError(f"creating network {full} failed: {e.explanation}") from e
            self._networks.append(str(net.id))
        return full

    def container(
        self,
        *,
        image: str,
        name: str,
        command: Sequence[str] | None,
        env: Mapping[str, str],
        network: str,
        alias: str,
        healthcheck: Mapping[str, Any] | None = None,
        workdir: str | None = None,
        user: str | None = None,
    ) -> Container:
        """Create (not start) a labelled container attached to ``network`` as ``alias``."""
        full = f"immu-{self.run_id}-{name}"
        self._check(f"container {full}")
        endpoint = self.client.api.create_endpoint_config(aliases=[alias])
        with deferred():  # a signal between create and append would leak the container
            container = self._create(image, full, command, env, network, endpoint, alias,
                                     healthcheck, workdir, user)
            self._containers.append(str(container.id))
        return container

    def _create(self, image: str, full: str, command: Sequence[str] | None,
                env: Mapping[str, str], network: str, endpoint: Any, alias: str,
                healthcheck: Mapping[str, Any] | None, workdir: str | None,
                user: str | None) -> Container:
        try:
            return self.client.containers.create(
                image,
                command=list(command) if command is not None else None,
                name=full,
                hostname=alias,
                environment=dict(env),
                labels=self.labels,
                network=network,
                networking_config={network: endpoint},
                healthcheck=dict(healthcheck) if healthcheck else None,
                working_dir=workdir,
                user=user,
                detach=True,
            )
        except docker.errors.ImageNotFound as e:
            raise EngineError(f"{full}: image {image} is not on this engine") from e
        except docker.errors.APIError as e:
            raise EngineError(f"creating container {full} failed: {e.explanation}") from e

    def remove_container(self, container_id: str) -> None:
        """Remove one container now (force, with its anonymous volumes)."""
        if keep_requested():
            return
        _quietly(lambda: self.client.api.remove_container(container_id, force=True, v=True))
        if container_id in self._containers:
            self._containers.remove(container_id)

    def cleanup(self, *, sweep: bool = True) -> None:
        """Remove every container, then every network of this run (unless IMMU_KEEP=1);
        ``sweep`` also removes anything else carrying this run's label."""
        if keep_requested():
            if self._containers or self._networks:
                self.log(f"IMMU_KEEP set: keeping resources labelled {RUN_LABEL}={self.run_id}\n")
            return
        with shielded():  # a second signal must not abort the cleanup half-way
            self._remove_containers(list(reversed(self._containers)))
            for nid in reversed(self._networks):
                _quietly(lambda nid=nid: self.client.api.remove_network(nid))
            if sweep:
                self._sweep()
        self._containers.clear()
        self._networks.clear()

    def _remove_containers(self, ids: list[str]) -> None:
        """Remove ``ids`` at once: stopping a database and removing a test container each
        take the engine a few hundred ms, and the suite's network can go only after both."""
        def remove(cid: str) -> None:
            _quietly(lambda: self.client.api.remove_container(cid, force=True, v=True))

        if len(ids) < 2:
            for cid in ids:
                remove(cid)
            return
        with HelperPool(max_workers=min(len(ids), MAX_PARALLEL_REMOVALS),
                        thread_name_prefix="immu-remove") as pool:
            list(pool.map(remove, ids))

    def _sweep(self) -> None:
        """Remove anything else labelled with this run (belt and braces after a crash)."""
        flt = {"label": f"{RUN_LABEL}={self.run_id}"}
        try:
            leftovers = self.client.containers.list(all=True, filters=flt)
            networks = self.client.networks.list(filters=flt)
        except (docker.errors.APIError, requests.exceptions.RequestException):
            return
        self._remove_containers([str(c.id) for c in leftovers])
        for n in networks:
            _quietly(n.remove)


def _quietly(call: Any) -> None:
    """Removal that tolerates "already gone" and retries transient engine errors."""
    try:
        retry(call, what="remove")
    except docker.errors.NotFound:
        pass
    except (docker.errors.APIError, requests.exceptions.RequestException):
        pass  # `immu gc` removes anything a failing engine kept; never mask the real error


def collect_garbage(client: docker.DockerClient, *, everything: bool) -> dict[str, list[str]]:
    """Remove resources of runs that are gone (or of every run with ``everything``)."""
    here = socket.gethostname()

    def stale(labels: Mapping[str, str]) -> bool:
        if everything or labels.get(HOST_LABEL) != here:
            return everything or labels.get(HOST_LABEL) is None
        return not _pid_alive(labels.get(PID_LABEL, ""))

    removed: dict[str, list[str]] = {"containers": [], "networks": [], "volumes": []}
    flt = {"label": RUN_LABEL}
    for c in client.containers.list(all=True, filters=flt):
        if stale(c.labels):
            _quietly(lambda c=c: c.remove(force=True, v=True))
            removed["containers"].append(c.name)
    for n in client.networks.list(filters=flt):
        if stale(n.attrs.get("Labels") or {}):
            _quietly(n.remove)
            removed["networks"].append(str(n.name))
    for v in client.volumes.list(filters=flt):
        if stale(v.attrs.get("Labels") or {}):
            _quietly(v.remove)
            removed["volumes"].append(str(v.name))
    return removed


def _pid_alive(pid_text: str) -> bool:
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
