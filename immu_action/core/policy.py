"""The promotion gate (pure, fail closed): may this run move the promoted tags?

Every condition must hold; each one that does not adds a reason, so the check run can say
exactly why nothing was promoted. The adapter fetches the facts (protection, head, tag
reachability) and passes plain values; an unknown fact is the same as a failed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PROMOTING_EVENTS = ("push", "workflow_dispatch")
"""The events that push and may promote; pull requests never do."""
Switch = Literal["auto", "true", "false"]
SWITCHES: tuple[Switch, ...] = ("auto", "true", "false")
"""The tri-state switches of ``immu run`` (``--push``, ``--promote``) and the action."""


def should_push(choice: Switch, *, event_name: str | None, is_fork: bool) -> bool:
    """``auto`` pushes on push/tag/dispatch events in Actions (``event_name`` None outside),
    never for pull requests or forks."""
    if choice != "auto":
        return choice == "true"
    return event_name in PROMOTING_EVENTS and not is_fork


@dataclass(frozen=True, kw_only=True)
class GateFacts:
    """What the gate decides on, already fetched from GitHub (None = unknown)."""

    tests_passed: bool
    event_name: str
    ref_type: str  # "branch" | "tag" | ""
    ref_name: str
    sha: str
    allowed_branches: tuple[str, ...]  # promote.branches of immu.yml
    branch: str | None  # the branch pushed to, or the listed branch the tag is reachable from
    protected: bool | None  # that branch per GitHub (branch API or active rules)
    head_sha: str | None  # that branch's head now (branch pushes)
    is_fork: bool = False
    protection_error: str = ""  # why ``protected`` is unknown (the API error), if it is


@dataclass(frozen=True, kw_only=True)
class PromotionDecision:
    """``allowed`` only when ``reasons`` is empty; ``reasons`` says what failed, in order."""

    allowed: bool
    reasons: tuple[str, ...] = ()
    branch: str | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON form for ``--json`` and the promotion record."""
        return {"allowed": self.allowed, "reasons": list(self.reasons), "branch": self.branch}


def _ref_reasons(f: GateFacts) -> list[str]:
    """Why the event/ref may not promote (empty when it may)."""
    if f.is_fork:
        return ["runs from forks never promote"]
    if f.event_name not in PROMOTING_EVENTS:
        return [f"event {f.event_name!r} does not promote (only push or workflow_dispatch)"]
    if not f.allowed_branches:
        return ["promote.branches is empty in immu.yml: no branch may promote"]
    listed = ", ".join(f.allowed_branches)
    if f.ref_type == "branch":
        if f.ref_name not in f.allowed_branches:
            return [f"branch {f.ref_name!r} is not listed in promote.branches ({listed})"]
        return []
    if f.ref_type == "tag":
        if f.branch is None or f.branch not in f.allowed_branches:
            return [f"tag {f.ref_name!r} points at {f.sha[:12]}, which is not reachable "
                    f"from a branch listed in promote.branches ({listed})"]
        return []
    return [f"ref {f.ref_name!r} is neither a branch nor a tag"]


def decide(facts: GateFacts) -> PromotionDecision:
    """Allow promotion only if every condition holds; otherwise list each failed one.

    Conditions: tests passed; push/workflow_dispatch to a listed branch, or a tag whose
    commit is reachable from a listed branch; GitHub reports that branch protected; for a
    branch run, the run's commit is still the branch head (a stale re-run must not move
    tags). A tag run is pinned by its tag, so reachability replaces the head check.
    """
    reasons: list[str] = []
    if not facts.tests_passed:
        reasons.append("tests did not pass")
    ref_reasons = _ref_reasons(facts)
    reasons += ref_reasons
    if not ref_reasons:
        branch = facts.branch if facts.ref_type == "tag" else facts.ref_name
        if facts.protected is False:
            reasons.append(f"branch {branch!r} is not protected on GitHub (needs branch "
                           "protection or an active ruleset)")
        elif facts.protected is None:
            why = f": {facts.protection_error}" if facts.protection_error else ""
            reasons.append(f"branch {branch!r} protection is unknown{why} (fail closed)")
        if facts.ref_type == "branch" and facts.head_sha != facts.sha:
            now = facts.head_sha[:12] if facts.head_sha else "unknown"
            reasons.append(f"commit {facts.sha[:12]} is no longer the head of {branch!r} "
                           f"(head is {now}): a stale run does not move tags")
    branch_used = facts.branch if facts.ref_type == "tag" else (facts.ref_name or None)
    return PromotionDecision(allowed=not reasons, reasons=tuple(reasons), branch=branch_used)
