"""The whole ``immu run``: build, push by digest, test that digest, gate, promote, report.

The image under test is the image that ships: after a push the tests run from
``repository@digest`` and the run proves that the image it tested has the config digest
of the pushed manifest (``tested_is_shipped``).
"""

from __future__ import annotations

import os
import secrets
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import docker

from immu_action import output
from immu_action.adapters import actions
from immu_action.adapters.docker import engine, push
from immu_action.adapters.git import git_facts
from immu_action.adapters.registry import promotion
from immu_action.adapters.registry.client import parse_reference
from immu_action.adapters.registry.verify import verify_pushed
from immu_action.core.context import GitHubContext
from immu_action.core.floating import HeldBack, held_back, mutable_tags, released_versions
from immu_action.core.policy import PromotionDecision
from immu_action.core.results import RunFailure, RunResult, Stage
from immu_action.core.summary import CHECK_RUN_NAME
from immu_action.core.tags import ref_info, render_tags, semver, tag_problem
from immu_action.errors import BadInput, Cancelled, ImmuError, InternalError, PolicyRefused
from immu_action.junit_merge import merged_junit
from immu_action.spec import Spec
from immu_action.stages import test as pipeline
from immu_action.switches import Switch

PUSH_EVENTS = ("push", "workflow_dispatch")
STAGING_TAG = "immu-staging-{sha}"


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """What ``immu run`` was asked to do."""

    suites: Sequence[str] | None
    results_root: Path
    push: Switch = "auto"
    promote: Switch = "auto"
    insecure_registry: bool = False
    check_name: str = CHECK_RUN_NAME


@dataclass(frozen=True, kw_only=True)
class FlowOutcome:
    """The run's results plus what happened to promotion (and why)."""

    run: RunResult
    build: pipeline.BuildResult
    promotion: Mapping[str, Any] | None
    promotion_refused: str | None
    report: Mapping[str, Any] | None


def should_push(choice: Switch, ctx: GitHubContext | None) -> bool:
    """``auto`` pushes on push/tag/dispatch events in Actions, never for pull requests."""
    if choice != "auto":
        return choice == "true"
    return ctx is not None and ctx.event_name in PUSH_EVENTS and not ctx.is_fork


class _Progress:
    """What the run has done so far, so that a failure at any stage is still reported."""

    def __init__(self, spec: Spec) -> None:
        self.stage: Stage = "spec"
        self.built: pipeline.BuildResult | None = None
        self.digest: str | None = None
        self.result = RunResult(image_id="", repository=spec.image.repository)
        self.promoted: Mapping[str, Any] | None = None
        self.refused: str | None = None
        self.decision: PromotionDecision | None = None
        self.error: ImmuError | None = None

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


def run(client: docker.DockerClient, spec: Spec, opts: RunOptions,
        ctx: GitHubContext | None) -> FlowOutcome:
    """Build, push when asked, test the exact image, then gate, promote and report.

    Whatever fails after the spec loaded (build, push, services, tests, promotion) is
    reported to GitHub like results (conclusion failure, the error in the summary), then
    raised for the CLI's exit code. Only a cancellation skips the report.
    """
    gh = _github(ctx) if ctx else None
    p = _Progress(spec)
    try:
        _stages(client, spec, opts, ctx, gh, p)
    except Cancelled:
        raise
    except Exception as e:  # every failure is reported, then raised
        if os.environ.get("IMMU_DEBUG"):
            traceback.print_exc()
        p.fail(e)
    report = _report(p.result, ctx, gh, spec, p.promoted, p.decision, opts,
                     failed=p.error is not None)
    if p.error is not None:
        raise p.error
    assert p.built is not None
    return FlowOutcome(run=p.result, build=p.built, promotion=p.promoted,
                       promotion_refused=p.refused, report=report)


def _stages(client: docker.DockerClient, spec: Spec, opts: RunOptions,
            ctx: GitHubContext | None, gh: Any, p: _Progress) -> None:
    """The run's stages in order; ``p`` records each result as it lands."""
    pipeline.select_suites(spec, opts.suites)  # bad suite names fail before a long build
    p.stage = "build"
    p.built = built = pipeline.build(client, spec, log=output.log_to_stderr)
    p.result = replace(p.result, image_id=built.image_id)
    sha = ctx.sha if ctx else (git_facts(spec.path.parent).sha or "")
    image_id = built.image_id
    if should_push(opts.push, ctx):
        p.stage = "push"
        p.digest, image_id = _push(client, spec, built, sha=sha, ctx=ctx, opts=opts)
        p.result = replace(p.result, digest=p.digest)
    p.stage = "tests"
    result = pipeline.test(client, spec, image_id=image_id, suite_names=opts.suites,
                           results_root=opts.results_root)
    if p.digest:
        # The proof: the image the suites ran is the config of the pushed manifest.
        result = replace(result, digest=p.digest, tested_is_shipped=image_id == built.image_id)
    p.result = result
    p.stage = "promote"
    p.promoted, p.refused, p.decision = _promote(spec, result, opts, ctx, gh, sha=sha)


def _staging_tag(spec: Spec, *, sha: str, ctx: GitHubContext | None) -> str:
    """``<promote.staging-tag>-<run id>.<attempt>`` (``-local-<random>`` off Actions): a tag
    of this push alone, which no promotion template renders and no later push reuses."""
    template = spec.promote.staging_tag if spec.promote else STAGING_TAG
    if not sha:
        raise BadInput("pushing needs a commit: run inside a git checkout (or GitHub Actions)")
    rendered = render_tags([template], ref_info(ctx.ref if ctx else "", sha))
    if not rendered.tags:
        reason = "; ".join(r for _, r in rendered.skipped)
        raise BadInput(f"{spec.path}: promote.staging-tag {template!r} cannot render: {reason}")
    run = f"{ctx.run_id}.{ctx.run_attempt or 1}" if ctx and ctx.run_id \
        else f"local-{secrets.token_hex(4)}"
    tag = f"{rendered.tags[0]}-{run}"
    problem = tag_problem(tag)
    if problem:
        raise BadInput(f"{spec.path}: promote.staging-tag {template!r} renders {problem}")
    return tag


def _push(client: docker.DockerClient, spec: Spec, built: pipeline.BuildResult, *, sha: str,
          ctx: GitHubContext | None, opts: RunOptions) -> tuple[str, str]:
    """Push under the staging tag, verify against the registry, return (digest, image ID).

    A push never overwrites a tag: the staging tag is this run's own, and one that already
    exists (a staging template that collides with a promoted tag) refuses the push.
    """
    tag = _staging_tag(spec, sha=sha, ctx=ctx)
    repository = spec.image.repository
    ref = parse_reference(f"{repository}:{tag}")
    registry = promotion.Registries(insecure=opts.insecure_registry).get(ref.host)
    existing = registry.head_manifest(ref.repository, tag)
    if existing is not None:
        raise PolicyRefused(f"{repository}:{tag} already exists (at {existing}): a push never "
                            "overwrites a tag; give promote.staging-tag a prefix of its own")
    client.images.get(built.image_id).tag(repository, tag)
    with output.fenced_group(f"Push {repository}:{tag}"):
        engine_digest = push.push(client, repository, tag, auth=push.auth_from_env(),
                                  log=output.log_to_stderr)
    pushed = verify_pushed(repository, tag, built.image_id, insecure=opts.insecure_registry,
                           client=registry)
    if pushed.manifest_digest != engine_digest:
        output.log_to_stderr(f"note: engine reported {engine_digest}, registry serves "
                               f"{pushed.manifest_digest} (the registry's is used)\n")
    # From here on the image is named by digest only; resolve it to the engine's image ID.
    with output.untrusted_output():
        image_id = engine.ensure_image(client, f"{repository}@{pushed.manifest_digest}",
                                       what="image under test", log=output.log_to_stderr)
    return pushed.manifest_digest, image_id


def _promote(spec: Spec, result: RunResult, opts: RunOptions, ctx: GitHubContext | None,
             gh: Any, *, sha: str
             ) -> tuple[Mapping[str, Any] | None, str | None, PromotionDecision | None]:
    """Promote when every condition holds; else say why not (the caller decides the exit).

    An immutable tag that would move raises ``PolicyRefused`` (reported, exit 3).
    """
    if opts.promote == "false" or spec.promote is None:
        return None, None, None
    if ctx is None and opts.promote == "auto":
        return None, None, None  # a laptop run: promotion is `immu promote`'s job
    decision = None
    why: str | None
    if ctx is None:
        why = ("promotion from `immu run` happens in GitHub Actions, where branch protection "
               "is checked; promote by hand with `immu promote REPOSITORY@DIGEST TAG...`")
    elif not result.digest:
        why = "nothing was pushed (pull request, or --no-push), so there is no digest to promote"
    else:
        from immu_action.adapters.github.gate import check_gate

        decision = check_gate(gh, ctx, tests_passed=result.ok,
                              branches=spec.promote.branches)
        why = None if decision.allowed else "; ".join(decision.reasons)
    if why is not None:
        # Not raised here: the report (check run, summary) must still say why.
        output.log_to_stderr(f"not promoting: {why}\n")
        return None, why, decision
    assert ctx is not None and result.digest is not None
    rendered = render_tags(list(spec.promote.tags), ref_info(ctx.ref, sha))
    for template, reason in rendered.skipped:
        output.log_to_stderr(f"tag template {template!r} skipped: {reason}\n")
    registries = promotion.Registries(insecure=opts.insecure_registry)
    held = _held_back(spec, rendered.pairs, ctx, registries, sha=sha)
    for h in held:
        output.log_to_stderr(f"not moved: {h.reason}\n")
    targets = [tag for tag, _ in rendered.pairs if tag not in {h.tag for h in held}]
    outcome = promotion.promote(
        f"{spec.image.repository}@{result.digest}", targets,
        mutable=mutable_tags(rendered.pairs, spec.promote.mutable),
        provenance=promotion.Provenance(commit=sha, run_url=ctx.run_url,
                                        tests=result.totals.as_dict(), actor=ctx.actor),
        registries=registries,
    )
    promoted = {**outcome.as_dict(), "environment": spec.promote.environment,
                "tags": [t.reference.rsplit(":", 1)[1] for t in outcome.tags],
                "held_back": [{"tag": h.tag, "stays_on": h.stays_on, "reason": h.reason}
                              for h in held]}
    return promoted, None, decision


def _held_back(spec: Spec, pairs: Sequence[tuple[str, str]], ctx: GitHubContext,
               registries: promotion.Registries, *, sha: str) -> list[HeldBack]:
    """On a release, the floating tags a higher release already in the registry keeps."""
    assert spec.promote is not None
    if not ctx.tag or semver(ctx.tag) is None or spec.promote.floating == "newest":
        return []
    ref = parse_reference(spec.image.repository)
    names = registries.get(ref.host).list_tags(ref.repository)
    released = released_versions(names, spec.promote.tags)
    return held_back(pairs, version=ctx.tag.removeprefix("v"), sha=sha, released=released,
                     rule=spec.promote.floating)


def _github(ctx: GitHubContext) -> Any:
    """A GitHub client for the run's repository (no request made), or None without a token."""
    from immu_action.adapters.github.client import client_for

    return client_for(ctx)


def _report(result: RunResult, ctx: GitHubContext | None, gh: Any, spec: Spec,
            promoted: Mapping[str, Any] | None, decision: PromotionDecision | None,
            opts: RunOptions, *, failed: bool) -> Mapping[str, Any] | None:
    """Under GitHub Actions, publish everything; elsewhere the CLI's own output suffices.

    When the run already failed, a GitHub failure while reporting is a warning: the run's
    own error decides the exit code (the step summary and outputs are written first).
    """
    if ctx is None:
        return None
    from immu_action.stages import report as reporting

    try:
        outcome = reporting.publish(
            result, ctx, promotion=promoted, gh=gh, decision=decision,
            # Only a release takes the merged junit.xml as an asset: skip the re-parse else.
            junit_xml=merged_junit([opts.results_root]) if ctx.tag and result.suites else None,
            environment=spec.promote.environment if spec.promote else "production",
            check_name=opts.check_name,
        )
    except ImmuError as e:
        if not failed:
            raise
        output.warning(f"reporting the failure to GitHub failed too: {e}",
                        title="immu: GitHub report incomplete")
        return None
    return {"wrote": list(outcome.wrote), "degraded": outcome.degraded}


def context_from_env(env: Mapping[str, str] | None = None) -> GitHubContext | None:
    """The GitHub Actions context, or None outside Actions."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") != "true":
        return None
    ctx = actions.load_context(env)
    if ctx.token:
        output.add_mask(ctx.token)
    return ctx
