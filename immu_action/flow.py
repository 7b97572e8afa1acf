"""The whole ``immu run``: build, push by digest, test that digest, gate, promote, report.

The image under test is the image that ships: after a push the tests run from
``repository@digest`` and the run proves that the image it tested has the config digest
of the pushed manifest (``tested_is_shipped``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import docker

from immu_action import pipeline, promotion
from immu_action.adapters import actions, engine, push
from immu_action.adapters.git import git_facts
from immu_action.adapters.registry_verify import verify_pushed
from immu_action.core.context import GitHubContext
from immu_action.core.policy import PromotionDecision
from immu_action.core.results import RunResult
from immu_action.core.tags import ref_info, render_tags
from immu_action.errors import BadInput
from immu_action.junit_merge import merged_junit
from immu_action.spec import Spec
from immu_action.switches import Switch

PUSH_EVENTS = ("push", "workflow_dispatch")


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """What ``immu run`` was asked to do."""

    suites: Sequence[str] | None
    results_root: Path
    push: Switch = "auto"
    promote: Switch = "auto"
    insecure_registry: bool = False


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


def run(client: docker.DockerClient, spec: Spec, opts: RunOptions,
        ctx: GitHubContext | None) -> FlowOutcome:
    """Build, push when asked, test the exact image, then gate, promote and report."""
    built = pipeline.build(client, spec, log=pipeline.log_to_stderr)
    sha = ctx.sha if ctx else (git_facts(spec.path.parent).sha or "")
    digest, image_id = None, built.image_id
    if should_push(opts.push, ctx):
        digest, image_id = _push(client, spec, built, sha=sha, ctx=ctx, opts=opts)
    result = pipeline.test(client, spec, image_id=image_id, suite_names=opts.suites,
                           results_root=opts.results_root)
    if digest:
        # The proof: the image the suites ran is the config of the pushed manifest.
        result = replace(result, digest=digest,
                         tested_is_shipped=image_id == built.image_id)
    gh = _github(ctx) if ctx else None
    promoted, refused, decision = _promote(spec, result, opts, ctx, gh, sha=sha)
    report = _report(result, ctx, gh, spec, promoted, decision, opts.results_root)
    return FlowOutcome(run=result, build=built, promotion=promoted,
                       promotion_refused=refused, report=report)


def _staging_tag(spec: Spec, *, sha: str, ctx: GitHubContext | None) -> str:
    template = spec.promote.staging_tag if spec.promote else "sha-{sha}"
    if not sha:
        raise BadInput("pushing needs a commit: run inside a git checkout (or GitHub Actions)")
    rendered = render_tags([template], ref_info(ctx.ref if ctx else "", sha))
    if not rendered.tags:
        reason = "; ".join(r for _, r in rendered.skipped)
        raise BadInput(f"{spec.path}: promote.staging-tag {template!r} cannot render: {reason}")
    return rendered.tags[0]


def _push(client: docker.DockerClient, spec: Spec, built: pipeline.BuildResult, *, sha: str,
          ctx: GitHubContext | None, opts: RunOptions) -> tuple[str, str]:
    """Push under the staging tag, verify against the registry, return (digest, image ID)."""
    tag = _staging_tag(spec, sha=sha, ctx=ctx)
    repository = spec.image.repository
    client.images.get(built.image_id).tag(repository, tag)
    with actions.group(f"Push {repository}:{tag}"):
        engine_digest = push.push(client, repository, tag, auth=push.auth_from_env(),
                                  log=pipeline.log_to_stderr)
        pushed = verify_pushed(repository, tag, built.image_id,
                               insecure=opts.insecure_registry)
    if pushed.manifest_digest != engine_digest:
        pipeline.log_to_stderr(f"note: engine reported {engine_digest}, registry serves "
                               f"{pushed.manifest_digest} (the registry's is used)\n")
    # From here on the image is named by digest only; resolve it to the engine's image ID.
    image_id = engine.ensure_image(client, f"{repository}@{pushed.manifest_digest}",
                                   what="image under test", log=pipeline.log_to_stderr)
    return pushed.manifest_digest, image_id


def _promote(spec: Spec, result: RunResult, opts: RunOptions, ctx: GitHubContext | None,
             gh: Any, *, sha: str
             ) -> tuple[Mapping[str, Any] | None, str | None, PromotionDecision | None]:
    """Promote when every condition holds; else say why not (the caller decides the exit)."""
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
        from immu_action.adapters.github_gate import check_gate

        decision = check_gate(gh, ctx, tests_passed=result.ok,
                              branches=spec.promote.branches)
        why = None if decision.allowed else "; ".join(decision.reasons)
    if why is not None:
        # Not raised here: the report (check run, summary) must still say why.
        pipeline.log_to_stderr(f"not promoting: {why}\n")
        return None, why, decision
    assert ctx is not None and result.digest is not None
    rendered = render_tags(list(spec.promote.tags), ref_info(ctx.ref, sha))
    for template, reason in rendered.skipped:
        pipeline.log_to_stderr(f"tag template {template!r} skipped: {reason}\n")
    outcome = promotion.promote(
        f"{spec.image.repository}@{result.digest}", list(rendered.tags),
        mutable=spec.promote.mutable,
        provenance=promotion.Provenance(commit=sha, run_url=ctx.run_url,
                                        tests=result.totals.as_dict(), actor=ctx.actor),
        registries=promotion.Registries(insecure=opts.insecure_registry),
    )
    promoted = {**outcome.as_dict(), "environment": spec.promote.environment,
                "tags": [t.reference.rsplit(":", 1)[1] for t in outcome.tags]}
    return promoted, None, decision


def _github(ctx: GitHubContext) -> Any:
    """A GitHub client for the run's repository (no request made), or None without a token."""
    from immu_action.adapters.github import client_for

    return client_for(ctx)


def _report(result: RunResult, ctx: GitHubContext | None, gh: Any, spec: Spec,
            promoted: Mapping[str, Any] | None, decision: PromotionDecision | None,
            results_root: Path) -> Mapping[str, Any] | None:
    """Under GitHub Actions, publish everything; elsewhere the CLI's own output suffices."""
    if ctx is None:
        return None
    from immu_action import reporting

    outcome = reporting.publish(
        result, ctx, promotion=promoted, gh=gh, decision=decision,
        # Only a release takes the merged junit.xml as an asset: skip the re-parse otherwise.
        junit_xml=merged_junit([results_root]) if ctx.tag else None,
        environment=spec.promote.environment if spec.promote else "production",
    )
    return {"wrote": list(outcome.wrote), "degraded": outcome.degraded}


def context_from_env(env: Mapping[str, str] | None = None) -> GitHubContext | None:
    """The GitHub Actions context, or None outside Actions."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") != "true":
        return None
    ctx = actions.load_context(env)
    if ctx.token:
        actions.add_mask(ctx.token)
    return ctx
