"""The report stage: statuses, check run, PR comment, release, deployment, outputs.

``publish`` writes what the event calls for, idempotently (a re-run updates, never adds).
The step summary and outputs are written first and need no permission; without a token or
with a read-only one (fork PRs) the API writes are skipped after one warning and the run's
exit code stays what the tests decided. Other GitHub failures (after retries) raise
``GitHubError``: the step summary is already there to read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from junitparser import JUnitXml, TestSuite
from junitparser.junitparser import JUnitXmlError

from immu_action import output
from immu_action.adapters import actions
from immu_action.core.annotations import failure_annotations
from immu_action.core.context import GitHubContext
from immu_action.core.junit import junit_files
from immu_action.core.policy import PromotionDecision
from immu_action.core.report import (
    conclusion,
    outputs,
    promotion_markdown,
    release_assets,
    release_markdown,
)
from immu_action.core.results import RunResult
from immu_action.core.summary import (
    CHECK_RUN_NAME,
    STEP_SUMMARY_LIMIT,
    run_markdown,
    short_id,
    status_description,
    totals_line,
)
from immu_action.errors import ImmuError

if TYPE_CHECKING:  # PyGithub costs ~0.1 s to import: only runs that talk to GitHub load it
    from immu_action.adapters.github.client import GitHubClient

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


def _write_github(gh: GitHubClient, run: RunResult, ctx: GitHubContext, markdown: str,
                  promotion: Mapping[str, Any] | None, decision: PromotionDecision | None,
                  junit_xml: bytes | None, environment: str, check_name: str,
                  done: dict[str, Any]) -> None:
    """Every API write for this event; ``done`` collects ids/urls as each write lands."""
    from immu_action.adapters.github.release import record_deployment, upsert_release

    title = totals_line(run.totals) if run.failure is None else (
        f"{run.failure.headline}: {run.failure.message.splitlines()[0]}")
    done["check_run"], url = gh.upsert_check_run(
        sha=ctx.sha, title=title[:255], summary=markdown, name=check_name,
        conclusion=conclusion(run), details_url=ctx.run_url,
        annotations=[a.as_dict() for a in failure_annotations(
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
            assets=release_assets(run, promotion, decision, junit_xml)).url
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
            check_name: str = CHECK_RUN_NAME, to_github: bool = True) -> ReportOutcome:
    """Write the run's report for ``ctx``'s event; see the module docstring for failures.
    ``to_github=False`` (a sharded workflow's build or shard job): summary and outputs only."""
    section = promotion_markdown(promotion, decision)
    actions.append_step_summary(run_markdown(run, sections=[section],
                                             limit=STEP_SUMMARY_LIMIT // 4))
    outs = outputs(run, promotion)
    actions.set_outputs(outs)
    wrote, degraded = ["step_summary", "outputs"], None
    done: dict[str, Any] = {}
    if not to_github:
        pass
    elif gh is None or (ctx.is_fork and ctx.event_name == "pull_request"):
        degraded = ("no GitHub token" if gh is None else "pull request from a fork: the "
                    "token is read-only") + "; results are in the step summary only"
    else:
        from immu_action.adapters.github.client import GitHubPermissionError

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


def report_run(result: RunResult, ctx: GitHubContext, *, gh: GitHubClient | None,
               promotion: Mapping[str, Any] | None, decision: PromotionDecision | None,
               results_root: Path, check_name: str, environment: str,
               failed: bool, to_github: bool = True) -> Mapping[str, Any] | None:
    """Publish the run; when it already failed, a GitHub failure while reporting is only a
    warning (the run's own error decides the exit code; summary and outputs are written)."""
    try:
        outcome = publish(
            result, ctx, promotion=promotion, gh=gh, decision=decision,
            # Only a release takes the merged junit.xml as an asset: skip the re-parse else.
            junit_xml=merged_junit([results_root]) if ctx.tag and result.suites else None,
            environment=environment, check_name=check_name, to_github=to_github)
    except ImmuError as e:
        if not failed:
            raise
        output.warning(f"reporting the failure to GitHub failed too: {e}",
                       title="immu: GitHub report incomplete")
        return None
    return {"wrote": list(outcome.wrote), "degraded": outcome.degraded}


def merged_junit(paths: Iterable[Path]) -> bytes | None:
    """One JUnit XML document holding every suite found under ``paths``; None if none."""
    merged = JUnitXml(name="immu")
    found = False
    for path in junit_files(paths):
        try:
            doc = JUnitXml.fromfile(str(path))
        except (JUnitXmlError, OSError, SyntaxError):
            continue  # already reported as a suite error by the parser
        suites = [doc] if isinstance(doc, TestSuite) else list(doc)
        for suite in suites:
            merged.add_testsuite(suite)
            found = True
    if not found:
        return None
    merged.update_statistics()  # type: ignore[no-untyped-call]
    body: bytes = merged.tostring()  # type: ignore[no-untyped-call]
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body
