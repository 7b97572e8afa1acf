"""What a run reports, as values (pure): the action's outputs, the conclusion, the release
section and assets, the promotion section. ``stages.report`` sends them to GitHub."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from immu_action.core.context import GitHubContext
from immu_action.core.policy import PromotionDecision
from immu_action.core.results import RunResult
from immu_action.core.summary import totals_line


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
    attestation = run.attestation or {}
    return {
        "image-id": run.image_id, "digest": run.digest or "", "image": run.image_ref,
        "repository": run.repository,
        "tests": str(totals.tests), "passed": str(totals.passed), "failed": str(totals.failed),
        "errors": str(totals.errors), "skipped": str(totals.skipped),
        "promoted-tags": "\n".join((promotion or {}).get("tags", [])),
        "results-json": results_json(run),
        "conclusion": conclusion(run),
        "error": run.failure.message if run.failure else "",
        "results-predicate-type": str(attestation.get("predicate_type") or ""),
        "results-predicate-path": str(attestation.get("predicate_path") or ""),
        "results-attestation": str(attestation.get("artifact") or ""),
    }


def release_assets(run: RunResult, promotion: Mapping[str, Any] | None,
            decision: PromotionDecision | None, junit_xml: bytes | None) -> dict[str, bytes]:
    """The release assets: results JSON, the merged JUnit (when any), the promotion record."""
    record = {"promoted": bool((promotion or {}).get("tags")), **(promotion or {})}
    if decision is not None:
        record.setdefault("decision", decision.as_dict())
    files = {"test-results.json": json.dumps(run.as_dict(), indent=2).encode()}
    if junit_xml is not None:
        files["junit.xml"] = junit_xml
    files["promotion.json"] = json.dumps(record, indent=2, sort_keys=True).encode()
    return files
