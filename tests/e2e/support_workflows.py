"""Helpers of tests/e2e/test_workflows.py: the shared world of the example-workflow events.

``World`` holds the temporary repository, the loopback registry, the GitHub emulator and what
earlier events promoted; ``World.act`` runs one example workflow under act and returns an
``Event`` (the act run, the emulator calls it made, the containers and networks its ``immu``
created and which of them are left). ``ResourceWatch`` attributes labelled resources to one act
run on an engine other test runs share.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import requests
import yaml

from immu_action.adapters.registry.promotion import Registries
from immu_action.adapters.registry.results import check_digest, stored_results
from immu_action.core.audit import is_record_name, record_key_of
from immu_action.core.summary import CHECK_RUN_NAME
from tests.support.act import GIT, ROOT, ActError, ActRun, export_tree, make_repo, run_act
from tests.support.github_emulator import GitHubEmulator
from tests.support.registry import PASSWORD, USER, Registry, start_registry

REFERRERS_LIST = re.compile(r"sha256-[0-9a-f]{64}")

EXAMPLE = ROOT / "examples" / "python-service"
WORKFLOWS = ROOT / "examples" / "workflows"
REPOSITORY = "acme/shop"
EXAMPLE_REPOSITORY = "127.0.0.1:5000/example/python-service"
ROLLBACK_IMAGE = "registry.example.com/acme/shop"
PUBLIC_TO_OFFLINE = {"python:3.12-slim": "immu-base/python:3",
                     "postgres:16": "immu-base/postgres:15"}
SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
TIMINGS: dict[str, float] = {}
STAGING = "immu-staging-"
RUN_IDS = itertools.count(9_000_001)


@dataclass
class World:
    """What the events share: the repository, the registry, the emulator and the digests."""

    repo: Path
    work: Path
    checkout: Path
    registry: Registry
    image: str  # host:port/path on the test registry
    emulator: GitHubEmulator
    docker: docker.DockerClient
    history: list[str] = field(default_factory=list)  # main's commits, oldest first
    digests: dict[str, str] = field(default_factory=dict)  # event -> promoted digest

    def promoted(self, event: str) -> str:
        """The digest an earlier event of this module promoted (the events build on each other)."""
        if event not in self.digests:
            pytest.fail(f"this event builds on the {event!r} event's promotion, which did not "
                        "happen: run the whole module, and fix the first failure first",
                        pytrace=False)
        return self.digests[event]

    @property
    def path(self) -> str:
        return self.image.split("/", 1)[1]

    def commit(self, files: dict[str, str], message: str) -> str:
        """Write ``files`` into the repository, commit, return the new HEAD."""
        for name, text in files.items():
            (self.repo / name).write_text(text)
        git = [*GIT, "-C", str(self.repo)]
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", message], check=True)
        return subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()

    def _checkout(self, sha: str) -> str | None:
        """Put the working tree at ``sha`` (detached); returns the branch to go back to."""
        git = [*GIT, "-C", str(self.repo)]
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        if head == sha:
            return None
        branch = subprocess.run([*git, "symbolic-ref", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        subprocess.run([*git, "checkout", "-q", "--detach", sha], check=True)
        return branch

    def tags(self) -> dict[str, str]:
        """Every image tag on the registry and its manifest digest, leaving out immu's own
        (``immu-audit-*`` records, ``immu-staging-*`` pushes, the ``immu-buildcache``) and
        the digests' referrers lists (``sha256-<hex>``: results and records)."""
        return {t: d for t, d in self.all_tags().items()
                if not is_record_name(t) and not t.startswith("immu-")
                and not REFERRERS_LIST.fullmatch(t)}

    def staged(self, sha: str) -> set[str]:
        """Digests pushed under the staging tags of commit ``sha`` (one tag per run)."""
        return {d for t, d in self.all_tags().items() if t.startswith(f"{STAGING}{sha}-")}

    def audited(self) -> set[str]:
        """The tags with an audit trail (``immu-audit-<tag>.<time>-<nonce>`` records)."""
        return {str(record_key_of(t)) for t in self.all_tags() if is_record_name(t)}

    def all_tags(self) -> dict[str, str]:
        """Every tag of the repository on the registry and its manifest digest."""
        client = self.registry.client()
        url = f"http://{self.registry.host}/v2/{self.path}/tags/list"
        answer = requests.get(url, auth=(USER, PASSWORD), timeout=10)
        if answer.status_code == 404:
            return {}
        answer.raise_for_status()
        names = answer.json().get("tags") or []
        return {t: str(client.head_manifest(self.path, t)) for t in names}

    def act(self, name: str, *, event: str, workflow: str, payload: dict[str, Any],
            sha: str, env: dict[str, str] | None = None,
            matrix: dict[str, list[str]] | None = None) -> Event:
        """Run one example workflow; returns its run plus what it did on GitHub and Docker.

        As on GitHub, the job is a check run of the Actions app, in progress while it runs;
        another job of the repository carries our check run's very name (a user may name a
        job so). Neither may be edited: the emulator flags it."""
        before = len(self.emulator.calls)
        run_id = (env or {}).get("GITHUB_RUN_ID") or str(next(RUN_IDS))
        restore = self._checkout(sha)  # act copies the working tree: make it the event's commit
        jobs = [*(self.emulator.start_job(name, sha) for name in job_names(WORKFLOWS / workflow)),
                self.emulator.start_job(CHECK_RUN_NAME, sha)]
        watch = ResourceWatch(self.docker, marker=str(self.work / name)).start()
        try:
            run = run_act(
                self.repo, event=event, workflow=f".github/workflows/{workflow}",
                payload=payload, work=self.work / name, action_checkout=self.checkout,
                github_api_url=self.emulator.url, token=self.emulator.token,
                variables={"REGISTRY_USERNAME": USER}, secrets={"REGISTRY_PASSWORD": PASSWORD},
                # act numbers every run 1; on GitHub each run has an id of its own
                env={**(env or {}), "GITHUB_RUN_ID": run_id}, matrix=matrix,
                timeout=420,
            )
        except ActError as e:
            pytest.fail(str(e), pytrace=False)
        finally:
            watch.stop()
            for job in jobs:
                self.emulator.finish_job(job)
            if restore:
                subprocess.run([*GIT, "-C", str(self.repo), "checkout", "-q", restore], check=True)
        TIMINGS[name] = run.seconds
        print(f"\nact {name}: {run.seconds:.1f}s ({step_times(run)})")
        return Event(run=run, calls=self.emulator.calls[before:], created=watch.created,
                     leftovers=watch.leftovers(), run_id=run_id)

    def statements(self, digest: str) -> list[dict[str, Any]]:
        """The in-toto statements stored with ``digest``."""
        found, ignored = stored_results(self.registry.client(), self.path, digest)
        assert ignored == [], ignored
        return [dict(r.statement) for r in found]

    def results(self, digest: str) -> dict[str, Any]:
        """The test results stored with ``digest`` in the registry, per run (``verify``)."""
        registries = Registries(clients={self.registry.host: self.registry.client()})
        return check_digest(f"{self.image}@{digest}", registries=registries).as_dict()


@dataclass(frozen=True)
class Event:
    """One act run and its side effects."""

    run: ActRun
    calls: list[Any]
    created: dict[str, str]  # id -> name of each container/network this run's immu created
    leftovers: dict[str, str]  # those of them that still exist
    run_id: str = ""  # GITHUB_RUN_ID of the act run

    def out(self) -> dict[str, str]:
        return self.run.outputs("immu")

    def paths(self, method: str) -> list[str]:
        return [c.path for c in self.calls if c.method == method]

    def count(self, method: str | None, pattern: str) -> int:
        """Calls of this run matching ``method`` (None: any) and the path regex ``pattern``."""
        return sum(1 for c in self.calls if (method is None or c.method == method)
                   and re.search(pattern, c.path))


class ResourceWatch:
    """Containers and networks labelled ``immu.run`` created by THIS act run's ``immu``.

    The engine is shared with other test runs, so a bare label filter would see theirs too.
    A resource is ours when the process named by its ``immu.pid`` label has our act work
    directory (``marker``, where act puts RUNNER_TEMP) in its environment; the process is alive
    while it creates them, and Docker's event stream tells us right then.
    """

    def __init__(self, client: docker.DockerClient, *, marker: str) -> None:
        self.client, self.marker = client, marker.encode()
        self.created: dict[str, str] = {}
        self._kinds: dict[str, str] = {}
        self._stream: Any = None
        self._thread = threading.Thread(target=self._follow, daemon=True)

    def start(self) -> ResourceWatch:
        self._stream = self.client.events(
            decode=True, filters={"type": ["container", "network"], "event": ["create"]})
        self._thread.start()
        return self

    def stop(self) -> None:
        time.sleep(0.5)  # let the stream deliver the last events
        self._stream.close()
        self._thread.join(timeout=5)

    def _follow(self) -> None:
        try:
            for event in self._stream:
                self._consider(event)
        except Exception:  # the stream closed under us: stop() was called
            return

    def _consider(self, event: dict[str, Any]) -> None:
        kind, rid = event.get("Type"), event.get("Actor", {}).get("ID", "")
        try:
            if kind == "container":
                info = self.client.api.inspect_container(rid)
                labels, name = info["Config"]["Labels"] or {}, info["Name"].lstrip("/")
            else:
                info = self.client.api.inspect_network(rid)
                labels, name = info.get("Labels") or {}, info["Name"]
        except docker.errors.NotFound:
            return  # gone before we looked: removed, hence not a leftover
        except docker.errors.APIError:
            return  # the engine did not answer; the caller's "saw something" check catches it
        if "immu.run" not in labels:
            return
        try:
            environ = Path(f"/proc/{int(labels.get('immu.pid', '0'))}/environ").read_bytes()
        except (OSError, ValueError):
            return
        if self.marker in environ:
            self.created[rid] = name
            self._kinds[rid] = str(kind)

    def leftovers(self) -> dict[str, str]:
        """Which of ours still exist."""
        left = {}
        for rid, name in self.created.items():
            try:
                if self._kinds[rid] == "container":
                    self.client.api.inspect_container(rid)
                else:
                    self.client.api.inspect_network(rid)
            except docker.errors.NotFound:
                continue
            left[rid] = name
        return left


def job_names(workflow: Path) -> list[str]:
    """The check-run names GitHub gives the jobs of ``workflow``: each job's name (else its
    id), once per matrix combination with ``${{ matrix.KEY }}`` filled in."""
    names = []
    for job_id, job in yaml.safe_load(workflow.read_text())["jobs"].items():
        name = str(job.get("name") or job_id)
        matrix = ((job.get("strategy") or {}).get("matrix") or {})
        combos = [{}] if not matrix else [{k: v} for k, vs in matrix.items() for v in vs]
        for combo in combos:
            names.append(re.sub(r"\$\{\{\s*matrix\.(\w+)\s*\}\}",
                                lambda m, c=combo: str(c.get(m[1], "")), name))
    return names


def step_times(run: ActRun) -> str:
    """``step 12.3s`` for each (composite action sub-)step that took at least a second."""
    parts = [f"{r.get('step')} {r['executionTime'] / 1e9:.1f}s" for r in run.records
             if r.get("stage", "Main") == "Main" and r.get("executionTime", 0) >= 1e9]
    return "; ".join(parts)


def rewrite(text: str, replacements: dict[str, str], *, where: str) -> str:
    for old, new in replacements.items():
        assert text.count(old) == 1, f"{where}: expected {old!r} once (the example changed?)"
        text = text.replace(old, new)
    return text


def base_images() -> None:
    done = subprocess.run([str(ROOT / "scripts" / "base-images.sh"), "python", "postgres"],
                          capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        pytest.fail(f"scripts/base-images.sh python postgres failed:\n{done.stderr[-4000:]}")


def open_world(tmp_path_factory: pytest.TempPathFactory, docker_client: docker.DockerClient,
               name: str) -> Iterator[World]:
    """The example repository (every example workflow in it), a fresh image repository on the
    loopback registry and a GitHub emulator; torn down (and checked) after the module."""
    registry = start_registry("main")  # the session's loopback registry (tests/support)
    base_images()
    base = tmp_path_factory.mktemp(name)
    image = f"{registry.host}/example/python-service-{uuid.uuid4().hex[:10]}"
    spec = rewrite((EXAMPLE / "immu.yml").read_text(),
                   {EXAMPLE_REPOSITORY: image, **PUBLIC_TO_OFFLINE}, where="immu.yml")
    flows = base / "workflows"
    flows.mkdir()
    for wf in sorted(WORKFLOWS.glob("*.yml")):
        text = wf.read_text()
        if wf.name == "rollback.yml":
            text = rewrite(text, {ROLLBACK_IMAGE: image}, where=wf.name)
        (flows / wf.name).write_text(text)
    repo = base / "repo"
    sha = make_repo(repo, workflows=sorted(flows.glob("*.yml")), files_from=EXAMPLE,
                    files={"immu.yml": spec}, repository=REPOSITORY)
    emulator = GitHubEmulator(owner="acme", repo="shop").start()
    world = World(repo=repo, work=base / "act", registry=registry, image=image,
                  emulator=emulator, docker=docker_client,
                  checkout=export_tree(ROOT, base / "immu-action"), history=[sha])
    try:
        yield world
    finally:
        emulator.stop()
        for ref in {t for img in docker_client.images.list(name=image)
                    for t in img.tags if t.startswith(image + ":")}:
            docker_client.images.remove(ref, noprune=False)
        shutil.rmtree(base, ignore_errors=True)
        print(f"\n{name} timings: "
              + ", ".join(f"{k} {v:.1f}s" for k, v in TIMINGS.items()))
    assert emulator.violations == [], "calls outside GitHub's OpenAPI description"
