"""Report a run to GitHub: statuses, check run, PR comment, release, deployment, outputs.

``publish`` writes what the event calls for, idempotently (a re-run updates, never adds).
The step summary and outputs are written first and need no permission; without a token or
with a read-only one (fork PRs) the API writes are skipped after one warning and the run's
exit code stays what the tests decided. Other GitHub failures (after retries) raise
``GitHubError``: the step summary is already there to read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from immu_action import output
from immu_action.adapters import actions
from immu_action.adapters.github.client import GitHubClient, GitHubPermissionError
from immu_action.adapters.github.release import record_deployment, upsert_release
from immu_action.core import summary
from immu_action.core.context import GitHubContext
from immu_action.core.policy import PromotionDecision
from immu_action.core.results import Failure, RunResult
from immu_action.core.summary import (
    CHECK_RUN_NAME,
    STEP_SUMMARY_LIMIT,
    Annotation,
    run_markdown,
    short_id,
    status_description,
    totals_line,
)

COMMENT_LIMIT = 65_000  # GitHub refuses comment bodies over 65,536 characters


@dataclass(frozen=True, kw_only=True)
class ReportOutcome:
    """What ``publish`` wrote (names in order) and, if it had to, why it degraded."""

    wrote: tuple[str, ...] = ()
    degraded: str | None = None
    check_run_id: int | None = None
    comment_id: int | None = None
    release_url: str | None = None
    deployment_id: int | None = None
    outputs: Mapping[str, str] = field(default_factory=dict)


def _annotations(failures: list[Failure]) -> list[Annotation]:
    """``summary.annotations``, looked up by value: the name collides with ``from __future__
    import annotations`` in that module (mypy: no-redef) and may be renamed there."""
    names = vars(summary)
    fn: Callable[[list[Failure]], list[Annotation]] = (
        names.get("failure_annotations") or names["annotations"])
    return fn(failures)


def promotion_markdown(promotion: Mapping[str, Any] | None,
                       decision: PromotionDecision | None) -> str:
    """The "Promotion" section: what was promoted, or every reason it was not."""
    held = "".join(f"- {h['reason']}\n" for h in (promotion or {}).get("held_back", []))
    held = f"\nNot moved:\n{held}" if held else ""
    if promotion and promotion.get("tags"):
        tags = ", ".join(f"`{t}`" for t in promotion["tags"])
        return (f"### Promotion\n\nPromoted `{promotion.get('digest', '')}` to {tags} in "
                f"`{promotion.get('repository', '')}` by manifest copy (no rebuild).\n{held}")
    reasons = list(promotion.get("reasons", [])) if promotion else []
    if decision is not None and not decision.allowed:
        reasons = list(decision.reasons)
    if not reasons:
        return ""
    return "### Promotion\n\nNot promoted:\n" + "".join(f"- {r}\n" for r in reasons)


def release_markdown(run: RunResult, ctx: GitHubContext,
                     promotion: Mapping[str, Any] | None) -> str:
    """The release section: digest, image reference, promoted tags, totals, the run."""
    tags = ", ".join(f"`{t}`" for t in (promotion or {}).get("tags", [])) or "none"
    return (f"### Tested image\n\n- Image: `{run.image_ref}`\n"
            f"- Digest: `{run.digest or 'not pushed'}`\n- Promoted tags: {tags}\n"
            f"- Tests: {totals_line(run.totals)}\n- Run: {ctx.run_url}\n")


def conclusion(run: RunResult) -> str:
    """``success``/``failure``; ``neutral`` when no suite was selected (nothing was proven,
    nothing failed); a run that stopped early is a failure."""
    if run.failure is None and not run.suites:
        return "neutral"
    return "success" if run.ok else "failure"


RESULTS_JSON_LIMIT = 256 * 1024  # GitHub caps a job's outputs at 1 MB in all


def results_json(run: RunResult) -> str:
    """The run as JSON for the ``results-json`` output; failure details go first if too big."""
    data = run.as_dict()
    text = json.dumps(data, sort_keys=True)
    if len(text) <= RESULTS_JSON_LIMIT:
        return text
    for suite in data["suites"]:
        for failure in suite["failures"]:
            failure["details"] = ""
        suite["failures"] = suite["failures"][:50]
    data["trimmed"] = "failure details dropped and failures capped at 50 per suite"
    return json.dumps(data, sort_keys=True)


def outputs(run: RunResult, promotion: Mapping[str, Any] | None) -> dict[str, str]:
    """The action's outputs (``GITHUB_OUTPUT``), exactly those action.yml declares."""
    totals = run.totals
    return {
        "image-id": run.image_id, "digest": run.digest or "", "image": run.image_ref,
        "tests": str(totals.tests), "passed": str(totals.passed), "failed": str(totals.failed),
        "errors": str(totals.errors), "skipped": str(totals.skipped),
        "promoted-tags": "\n".join((promotion or {}).get("tags", [])),
        "results-json": results_json(run),
        "conclusion": conclusion(run),
        "error": run.failure.message if run.failure else "",
    }


def _statuses(gh: GitHubClient, run: RunResult, ctx: GitHubContext, summary_url: str) -> None:
    """``immu/<suite>`` per suite, then ``immu`` overall (the one branch rules require),
    linking the check run's summary: with a workflow token it may land in another
    workflow's check suite, so the status is where users find it."""
    for suite in run.suites:
        one = replace(run, suites=(suite,), failure=None)
        gh.create_status(ctx.sha, state="success" if one.ok else "failure",
                         context=f"immu/{suite.name}", description=status_description(one),
                         target_url=ctx.run_url)
    state = "success" if run.ok else "failure"
    if run.failure is not None and not run.failure.refused:
        state = "error"  # the run broke before it could decide
    gh.create_status(ctx.sha, state=state, context="immu",
                     description=status_description(run), target_url=summary_url)


def _assets(run: RunResult, promotion: Mapping[str, Any] | None,
            decision: PromotionDecision | None, junit_xml: bytes | None) -> dict[str, bytes]:
    record = {"promoted": bool((promotion or {}).get("tags")), **(promotion or {})}
    if decision is not None:
        record.setdefault("decision", decision.as_dict())
    files = {"test-results.json": json.dumps(run.as_dict(), indent=2).encode()}
    if junit_xml is not None:
        files["junit.xml"] = junit_xml
    files["promotion.json"] = json.dumps(record, indent=2, sort_keys=True).encode()
    return files


def _write_github(gh: GitHubClient, run: RunResult, ctx: GitHubContext, markdown: str,
                  promotion: Mapping[str, Any] | None, decision: PromotionDecision | None,
                  junit_xml: bytes | None, environment: str, check_name: str,
                  done: dict[str, Any]) -> None:
    """Every API write for this event; ``done`` collects ids/urls as each write lands."""
    title = totals_line(run.totals) if run.failure is None else (
        f"{run.failure.headline}: {run.failure.message.splitlines()[0]}")
    done["check_run"], url = gh.upsert_check_run(
        sha=ctx.sha, title=title[:255], summary=markdown, name=check_name,
        conclusion=conclusion(run), details_url=ctx.run_url,
        annotations=[a.as_dict() for a in _annotations(
            [f for s in run.suites for f in s.results.failures])])
    actions.append_step_summary(f"Check run: [{check_name}]({url}) (with a workflow token "
                                "GitHub may list it under another workflow's checks)\n")
    _statuses(gh, run, ctx, url)
    done["statuses"] = len(run.suites) + 1
    if ctx.pr_number is not None:
        done["comment"] = gh.upsert_comment(
            ctx.pr_number, run_markdown(run, sections=[promotion_markdown(promotion, decision)],
                                        limit=COMMENT_LIMIT))
    if ctx.tag and run.failure is None:  # a broken or refused re-run keeps the release as is
        done["release"] = upsert_release(
            gh, tag=ctx.tag, section=release_markdown(run, ctx, promotion),
            assets=_assets(run, promotion, decision, junit_xml)).url
    if promotion and promotion.get("tags"):
        done["deployment"] = record_deployment(
            gh, sha=ctx.sha, environment=str(promotion.get("environment") or environment),
            payload={"digest": promotion.get("digest", run.digest),
                     "image": run.image_ref, "tags": list(promotion["tags"])},
            description=f"immu promoted {short_id(run.digest or run.image_id)}",
            log_url=ctx.run_url)


def publish(run: RunResult, ctx: GitHubContext, *, promotion: Mapping[str, Any] | None,
            gh: GitHubClient | None, decision: PromotionDecision | None = None,
            junit_xml: bytes | None = None, environment: str = "production",
            check_name: str = CHECK_RUN_NAME) -> ReportOutcome:
    """Write the run's report for ``ctx``'s event; see the module docstring for failures."""
    section = promotion_markdown(promotion, decision)
    actions.append_step_summary(run_markdown(run, sections=[section],
                                             limit=STEP_SUMMARY_LIMIT // 4))
    outs = outputs(run, promotion)
    actions.set_outputs(outs)
    wrote, degraded = ["step_summary", "outputs"], None
    done: dict[str, Any] = {}
    if gh is None or (ctx.is_fork and ctx.event_name == "pull_request"):
        degraded = ("no GitHub token" if gh is None else "pull request from a fork: the "
                    "token is read-only") + "; results are in the step summary only"
    else:
        try:
            _write_github(gh, run, ctx, run_markdown(run, sections=[section]),
                          promotion, decision, junit_xml, environment, check_name, done)
        except GitHubPermissionError as e:
            degraded = f"{e}; results are in the step summary"
    if degraded:
        output.warning(degraded, title="immu: GitHub report skipped")
    return ReportOutcome(
        wrote=(*wrote, *done), degraded=degraded, check_run_id=done.get("check_run"),
        comment_id=done.get("comment"), release_url=done.get("release"),
        deployment_id=done.get("deployment"), outputs=outs)
