"""``immu run``, top to bottom: build, push by digest, test that digest, gate, promote, report.

The image under test is the image that ships: after a push the tests run from
``repository@digest`` and the run proves that the image it tested has the config digest
of the pushed manifest (``tested_is_shipped``). Whatever fails after the spec loaded is
reported like results (conclusion failure, the error in the summary), then raised for the
CLI's exit code; only a cancellation skips the report.

buildx is launched first: docker-py, requests and the later stages are imported, the engine
connected, the staging tag looked up and the services started while BuildKit works (this
module imports none of them at its top; a build job's start-up is on every CI run).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from immu_action import output
from immu_action.adapters import actions
from immu_action.adapters.git import git_facts, head_sha
from immu_action.adapters.signals import cancellable
from immu_action.core.context import GitHubContext
from immu_action.core.policy import PromotionDecision, Switch, should_push
from immu_action.core.results import RunFailure, RunResult, Stage
from immu_action.core.sharding import Durations, Shard
from immu_action.core.summary import CHECK_RUN_NAME
from immu_action.core.timings import Timeline
from immu_action.errors import (
    BadInput,
    Cancelled,
    EngineError,
    ImmuError,
    InternalError,
    PolicyRefused,
)
from immu_action.spec import Spec
from immu_action.stages import build as build_stage
from immu_action.stages.build import BuildResult

if TYPE_CHECKING:
    import docker

    from immu_action.stages.attest import Attested
    from immu_action.stages.push import EarlyPush
    from immu_action.stages.services import Warmup


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """What ``immu run`` was asked to do."""

    suites: Sequence[str] | None
    results_root: Path
    push: Switch = "auto"
    promote: Switch = "auto"
    insecure_registry: bool = False
    check_name: str = CHECK_RUN_NAME
    parallel: int | None = None  # suites at once; None: the runner's CPUs
    shard: Shard | None = None  # this job's part of a run split over matrix jobs
    image: str | None = None  # test this pushed REPOSITORY@DIGEST instead of building
    tests: bool = True  # False: build and push only (a sharded workflow's build job)
    gather: int | None = None  # gather this many shards' stored results of ``image``
    gather_run: str | None = None  # ...from this run (default: the Actions run)


@dataclass(frozen=True, kw_only=True)
class RunOutcome:
    """The run's results plus what happened to promotion (and why)."""

    run: RunResult
    build: BuildResult | None  # None when the run tested a digest another job built
    promotion: Mapping[str, Any] | None
    promotion_refused: str | None
    report: Mapping[str, Any] | None
    staging_tag: str | None = None
    attested: Attested | None = None
    timings: Mapping[str, Any] | None = None  # core.timings.Timeline.as_dict()


class _Progress:
    """What the run has done so far, so that a failure at any stage is still reported."""

    def __init__(self, spec: Spec) -> None:
        self.timeline = Timeline()
        self._stage: Stage = "spec"
        self.built: BuildResult | None = None
        self.result = RunResult(image_id="", repository=spec.image.repository)
        self.promoted: Mapping[str, Any] | None = None
        self.refused: str | None = None
        self.decision: PromotionDecision | None = None
        self.error: ImmuError | None = None
        self.staging_tag: str | None = None
        self.attested: Attested | None = None

    @property
    def stage(self) -> Stage:
        """The stage under way (a failure is recorded as this stage's)."""
        return self._stage

    @stage.setter
    def stage(self, stage: Stage) -> None:
        self._stage = stage
        if stage != "internal":
            self.timeline.enter(stage)

    def fail(self, error: BaseException) -> None:
        """Record ``error`` as the run's failure at the current stage."""
        if not isinstance(error, ImmuError):
            error = InternalError(f"unexpected {type(error).__name__} during the {self.stage} "
                                  f"stage: {error} (set IMMU_DEBUG=1 for the traceback)")
            self.stage = "internal"
        self.error = error
        refused = isinstance(error, PolicyRefused)
        self.refused = str(error) if refused else self.refused
        self.result = replace(self.result, failure=RunFailure(
            stage=self.stage, message=str(error), exit_code=int(error.exit_code),
            refused=refused))


class _Engine:
    """The environment's engine, connected (docker-py imported) on first use: a build is
    launched before."""

    def __init__(self) -> None:
        self._client: docker.DockerClient | None = None

    def __call__(self) -> docker.DockerClient:
        if self._client is None:
            from immu_action.adapters.docker.engine import connect

            self._client = connect()
        return self._client


def run(spec: Spec, opts: RunOptions, ctx: GitHubContext | None) -> RunOutcome:
    """Build, push when asked, test the exact image, then gate, promote and report."""
    gh = _github(ctx) if ctx else None
    p = _Progress(spec)
    try:
        if opts.gather is not None:
            _gather_stages(spec, opts, ctx, gh, p)
        else:
            _stages(_Engine(), spec, opts, ctx, gh, p)
    except Cancelled:
        raise
    except Exception as e:  # every failure is reported, then raised
        if os.environ.get("IMMU_DEBUG"):
            traceback.print_exc()
        p.fail(e)
    p.timeline.enter("report")
    from immu_action.stages.report import report_run

    report = None if ctx is None else report_run(
        p.result, ctx, gh=gh, promotion=p.promoted, decision=p.decision,
        results_root=opts.results_root, check_name=opts.check_name,
        environment=spec.promote.environment if spec.promote else "production",
        failed=p.error is not None,
        # A build job or one shard: its summary and outputs; the gather job reports the run.
        to_github=opts.tests and opts.shard is None)
    p.timeline.close()
    if p.error is not None:
        p.error.timings = p.timeline.as_dict()
        raise p.error
    return RunOutcome(run=p.result, build=p.built, promotion=p.promoted,
                      promotion_refused=p.refused, report=report, staging_tag=p.staging_tag,
                      attested=p.attested, timings=p.timeline.as_dict())


def _stages(client: _Engine, spec: Spec, opts: RunOptions, ctx: GitHubContext | None,
            gh: Any, p: _Progress) -> None:
    """The run's stages in order; ``p`` records each result as it lands."""
    pushing = False
    if opts.image is None:
        pushing = should_push(opts.push, event_name=ctx.event_name if ctx else None,
                              is_fork=bool(ctx and ctx.is_fork))
        if not opts.tests and not pushing:
            raise BadInput("a build-only run (no tests) is for a sharded workflow's build "
                           "job: it must push (--push, or IMMU_PUSH=true)")
    warm: Warmup | None = None
    ahead: _Ahead | None = None
    durations = _durations(spec, opts)
    # While the build, the services or a push run, a termination signal is Cancelled (then
    # everything is cleaned up) here.
    with cancellable():
        try:
            if opts.image is None:
                p.stage = "build"
                with output.fenced_group(f"Build {spec.image.repository}"):
                    facts = git_facts(spec.path.parent)
                    sha = ctx.sha if ctx else (facts.sha or "")
                    tag = _staging_tag(spec, ctx, p, sha) if pushing else None
                    started = build_stage.start(
                        spec, log=output.log_to_stderr, export_cache=pushing, facts=facts,
                        engine_info=lambda: build_stage.engine_info(client),
                        also_tag=f"{spec.image.repository}:{tag}" if tag else None)
                    staging: _Staging | None = None
                    early: EarlyPush | None = None
                    try:
                        _check_suites(spec, opts)
                        staging = _staging(spec, opts, p, tag) if tag else None
                        warm = _warm_services(client, spec, opts, durations)
                        early = _push_early(client(), spec, opts, started, staging)
                        ahead = _go_ahead(spec, opts, started, staging, early)
                        p.built = build_stage.exported(started, ahead.early.image_id) if ahead \
                            else build_stage.finish(started, client(),
                                                    known=early.image_id if early else None)
                    except BaseException:
                        started.stop()
                        _pushed_before_failure(spec, staging, early)
                        raise
                p.result = replace(p.result, image_id=p.built.image_id)
                image_id, digest, shipped = _push(client(), spec, opts, p, staging, early)
            else:
                _check_suites(spec, opts)
                sha = ctx.sha if ctx else (head_sha(spec.path.parent) or "")
                warm = _warm_services(client, spec, opts, durations)
                image_id, digest, shipped = _pull(client(), spec, opts, p)
        except BaseException:
            if warm is not None:  # the build failed, or the run was cancelled: nothing stays
                warm.abort()
            if ahead is not None:
                ahead.abandon()
            raise
    if not opts.tests:
        return
    try:
        _test_stages(client(), spec, opts, ctx, gh, p, warm=warm, durations=durations,
                     sha=sha, image_id=image_id, digest=digest, shipped=shipped, ahead=ahead)
    except BaseException:
        if ahead is not None:
            ahead.abandon()
        raise


@dataclass(frozen=True)
class _Staging:
    """The staging tag of this run's push, what the registry held there before, and the
    registry clients (logged in once for the look-up and the push)."""

    tag: str
    holds: str | None
    registries: Any


def _check_suites(spec: Spec, opts: RunOptions) -> None:
    """Suite names that are not in the spec fail the run before anything else starts."""
    from immu_action.stages.test import select_suites

    select_suites(spec, opts.suites)


def _staging_tag(spec: Spec, ctx: GitHubContext | None, p: _Progress, sha: str) -> str:
    """The staging tag, rendered before the build starts (buildx names the image so)."""
    from immu_action.stages.staging import staging_tag

    try:
        return staging_tag(spec, sha=sha, ctx=ctx)
    except BaseException:
        p.stage = "push"
        raise


def _staging(spec: Spec, opts: RunOptions, p: _Progress, tag: str) -> _Staging:
    """The staging tag, looked up while BuildKit works (a registry refusing the credentials
    fails the run now, not after the build)."""
    from immu_action.adapters.registry.promotion import Registries
    from immu_action.stages.staging import staging_holds

    registries = Registries(insecure=opts.insecure_registry)
    try:
        holds = staging_holds(spec, tag, registries=registries)
    except BaseException:
        p.stage = "push"
        raise
    return _Staging(tag=tag, holds=holds, registries=registries)


def _push_early(client: docker.DockerClient, spec: Spec, opts: RunOptions,
                started: build_stage.StartedBuild, staging: _Staging | None) -> EarlyPush | None:
    """The push, started while BuildKit still exports the registry cache (when it does)."""
    if staging is None or started.running is None:
        return None
    from immu_action.stages.push import push_while_built

    return push_while_built(client, spec, started.running, tag=staging.tag,
                            holds=staging.holds, registries=staging.registries,
                            insecure=opts.insecure_registry)


@dataclass
class _Ahead:
    """The build goes on (BuildKit exports the cache) while the run tests the image it
    pushed early (``early.image_id``, verified in the registry). The rest of buildx's log is
    kept back until ``finish``."""

    spec: Spec
    started: build_stage.StartedBuild
    staging: _Staging
    early: EarlyPush
    done: bool = False

    def _group(self) -> AbstractContextManager[None]:
        """buildx's log is the build's (user code): fenced like the build's own group."""
        return output.fenced_group(f"Build {self.spec.image.repository}: the cache export")

    def finish(self, client: docker.DockerClient, p: _Progress) -> None:
        """Wait for buildx (its log in a group of its own): a failed cache export fails the
        run at the build, and buildx's result must be the image tested."""
        self.done = True
        p.stage = "build"
        running = self.started.running
        assert running is not None
        tested = self.early.image_id
        with self._group():
            running.release_log()
            try:
                with cancellable():  # a cancel now stops buildx
                    built = build_stage.finish(self.started, client, known=tested)
            except BaseException:
                _pushed_before_failure(self.spec, self.staging, self.early)
                raise
        if built.image_id != tested:
            raise EngineError(
                f"buildx built {built.image_id}, not {tested}, the image its log named "
                "when it exported it, which this run pushed and tested: nothing is promoted; "
                "run again")

    def abandon(self) -> None:
        """The run failed or was cancelled before ``finish``: the build stops (the cache is
        not exported), and what its log said is written."""
        if self.done:
            return
        self.done = True
        running = self.started.running
        assert running is not None
        with self._group():
            running.release_log()
            if running.working():
                output.log_to_stderr("note: the build's cache export was stopped: the run "
                                     "ended before it\n")
            self.started.stop()
        running.hold_log()  # a line still on its way is not written outside the fence


def _go_ahead(spec: Spec, opts: RunOptions, started: build_stage.StartedBuild,
              staging: _Staging | None, early: EarlyPush | None) -> _Ahead | None:
    """The run's tests start while BuildKit still exports the build cache, once the image is
    pushed and verified during it (the cache export can take as long as the tests on a
    remote registry); None: the run waits for buildx first."""
    if not opts.tests or staging is None or early is None or early.error is not None \
            or early.pushed is None or started.running is None \
            or not started.running.working():
        return None
    started.running.hold_log()
    output.log_to_stderr("the tests start while BuildKit exports the build cache (its log "
                         "follows them)\n")
    return _Ahead(spec=spec, started=started, staging=staging, early=early)


def _pushed_before_failure(spec: Spec, staging: _Staging | None,
                           early: EarlyPush | None) -> None:
    """Say so when the build failed (or was cancelled) after its image was pushed."""
    if staging is not None and early is not None and early.error is None:
        output.log_to_stderr(f"note: {spec.image.repository}:{staging.tag} was pushed before "
                             "the build ended; it is this run's staging tag, which nothing "
                             "promotes\n")


def _warm_services(client: _Engine, spec: Spec, opts: RunOptions,
                   durations: Durations) -> Warmup | None:
    """Services do not depend on the image under test: up while it builds (or is pulled)."""
    if not opts.tests:
        return None
    from immu_action.stages.services import AHEAD_PER_WORKER, Warmup
    from immu_action.stages.test import shard_selection, suite_workers

    chosen = shard_selection(spec, opts.suites, opts.shard, durations)
    if not Warmup.needed(chosen):
        return None
    ahead = AHEAD_PER_WORKER * suite_workers(opts.parallel, len(chosen))
    return Warmup(client(), spec, chosen, ahead=ahead).start()


def _durations(spec: Spec, opts: RunOptions) -> Durations:
    """The test durations a shard splits by (stored with the last promoted digest). Asked
    before the build's log group opens: a warning from it must stay a warning."""
    if opts.shard is None or not opts.tests:
        return Durations()
    from immu_action.stages.shards import stored_durations

    return stored_durations(spec, insecure=opts.insecure_registry)


def _push(client: docker.DockerClient, spec: Spec, opts: RunOptions, p: _Progress,
          staging: _Staging | None,
          early: EarlyPush | None = None) -> tuple[str, str | None, bool | None]:
    """Push the built image under its staging tag (when the run pushes): (image ID, digest
    or None, whether the image under test is the pushed one)."""
    from immu_action.stages.push import push_image

    built = p.built
    assert built is not None
    if staging is None:
        return built.image_id, None, None
    p.stage = "push"
    pushed = push_image(client, spec, built, tag=staging.tag, holds=staging.holds,
                        insecure=opts.insecure_registry, registries=staging.registries,
                        early=early)
    p.staging_tag = pushed.tag
    p.result = replace(p.result, digest=pushed.digest, digest_kind=pushed.kind)
    # The proof: the image the suites run is the config of the pushed manifest.
    return pushed.image_id, pushed.digest, pushed.image_id == built.image_id


def _pull(client: docker.DockerClient, spec: Spec, opts: RunOptions,
          p: _Progress) -> tuple[str, str | None, bool | None]:
    """A digest another job built and pushed: pulled, proved, tested."""
    from immu_action.stages.push import pull_pushed

    assert opts.image is not None
    p.stage = "push"
    pushed = pull_pushed(client, spec, opts.image, insecure=opts.insecure_registry)
    p.result = replace(p.result, image_id=pushed.image_id, digest=pushed.digest,
                       digest_kind=pushed.kind)
    return pushed.image_id, pushed.digest, True


def _test_stages(client: docker.DockerClient, spec: Spec, opts: RunOptions,
                 ctx: GitHubContext | None, gh: Any, p: _Progress, *, warm: Warmup | None,
                 durations: Durations, sha: str, image_id: str, digest: str | None,
                 shipped: bool | None, ahead: _Ahead | None = None) -> None:
    """The suites on the image under test (``ahead``: while BuildKit exports the cache,
    waited for once they ran), then its attestation, the gate and promotion."""
    from immu_action.adapters.registry.promotion import Registries
    from immu_action.stages.attest import attest, identity
    from immu_action.stages.gate import gate
    from immu_action.stages.promote import promote_run
    from immu_action.stages.test import run_suites

    p.stage = "tests"
    try:
        result = run_suites(client, spec, image_id=image_id, suite_names=opts.suites,
                            results_root=opts.results_root, parallel=opts.parallel,
                            shard=opts.shard, durations=durations, warm=warm,
                            timeline=p.timeline)
    except BaseException:
        if warm is not None:
            warm.abort()
        raise
    if digest:
        result = replace(result, digest=digest, digest_kind=p.result.digest_kind,
                         tested_is_shipped=shipped)
    p.result = result
    if ahead is not None:
        ahead.finish(client, p)
    p.stage = "attest"
    p.attested = attest(spec, result, who=identity(ctx, sha=sha, shard=opts.shard),
                        results_root=opts.results_root, services=result.services, ctx=ctx,
                        registries=Registries(insecure=opts.insecure_registry))
    p.result = replace(result, attestation=p.attested.as_dict())
    if p.attested.artifact:
        output.log_to_stderr(f"results stored in the registry: {p.attested.artifact}\n")
    if opts.shard is not None:
        return  # one shard of many: the gather job gates, promotes and reports
    p.stage = "promote"
    allowed, p.refused, p.decision = gate(spec, result, choice=opts.promote, ctx=ctx, gh=gh)
    if allowed:
        assert ctx is not None
        p.promoted = promote_run(spec, result, ctx, sha=sha, insecure=opts.insecure_registry)


def _gather_stages(spec: Spec, opts: RunOptions, ctx: GitHubContext | None, gh: Any,
                   p: _Progress) -> None:
    """A sharded run's last job: every shard's results from the registry, then the gate and
    promotion of the one digest they tested; reported once, like a whole run."""
    if opts.image is None or opts.gather is None:
        raise BadInput("gathering needs the tested digest (--image REPOSITORY@DIGEST) and "
                       "the number of shards (--shards N)")
    from immu_action.stages.gate import gate
    from immu_action.stages.promote import promote_run
    from immu_action.stages.shards import gather

    p.stage = "tests"
    gathered = gather(spec, opts.image, shards=opts.gather, ctx=ctx, run=opts.gather_run,
                      insecure=opts.insecure_registry)
    p.result = result = gathered.result
    if result.failure is not None:
        return
    p.stage = "promote"
    allowed, p.refused, p.decision = gate(spec, result, choice=opts.promote, ctx=ctx, gh=gh)
    if allowed:
        assert ctx is not None and result.digest is not None
        p.promoted = promote_run(spec, result, ctx, sha=ctx.sha, insecure=opts.insecure_registry)


def _github(ctx: GitHubContext) -> Any:
    """A GitHub client for the run's repository (no request made), or None without a token."""
    from immu_action.adapters.github.client import client_for

    return client_for(ctx)


def context_from_env(env: Mapping[str, str] | None = None) -> GitHubContext | None:
    """The GitHub Actions context, or None outside Actions."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") != "true":
        return None
    ctx = actions.load_context(env)
    if ctx.token:
        output.add_mask(ctx.token)
    return ctx
