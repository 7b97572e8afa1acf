"""Fetch the facts of the promotion gate from GitHub, then let ``core.policy`` decide.

Calls only what the event needs: nothing for pull requests and other events; the branch
(and its rules when the flag says unprotected) for a branch push; compare per listed branch
until one contains the tag's commit, then that branch, for a tag push.
"""

from __future__ import annotations

from collections.abc import Sequence

from immu_action.adapters.github.client import BranchInfo, GitHubClient
from immu_action.core.context import GitHubContext
from immu_action.core.policy import PROMOTING_EVENTS, GateFacts, PromotionDecision, decide


def _gate_branch(client: GitHubClient, ctx: GitHubContext,
                 branches: Sequence[str]) -> str | None:
    """The listed branch the run belongs to: the pushed branch, or one holding the tag."""
    if ctx.ref_type == "branch":
        return ctx.ref_name if ctx.ref_name in branches else None
    if ctx.ref_type == "tag":
        return next((b for b in branches if client.is_reachable(ctx.sha, b)), None)
    return None


def gate_facts(client: GitHubClient | None, ctx: GitHubContext, *, tests_passed: bool,
               branches: Sequence[str]) -> GateFacts:
    """The gate's inputs; with no client (no token) every GitHub fact is unknown."""
    # Fetched even when tests failed, so the check run lists every failed condition.
    eligible = client is not None and not ctx.is_fork and ctx.event_name in PROMOTING_EVENTS
    branch = _gate_branch(client, ctx, branches) if eligible and client else None
    info = client.branch_info(branch) if client and branch else None
    return GateFacts(
        tests_passed=tests_passed, event_name=ctx.event_name, ref_type=ctx.ref_type,
        ref_name=ctx.ref_name, sha=ctx.sha, allowed_branches=tuple(branches), branch=branch,
        protected=info.protected if info else None, head_sha=info.head_sha if info else None,
        is_fork=ctx.is_fork,
        protection_error=info.why if info and info.protected is None else "")


def check_gate(client: GitHubClient | None, ctx: GitHubContext, *, tests_passed: bool,
               branches: Sequence[str]) -> PromotionDecision:
    """Decide whether this run may promote (fail closed); the reasons say why not."""
    return decide(gate_facts(client, ctx, tests_passed=tests_passed, branches=branches))


__all__ = ["BranchInfo", "check_gate", "gate_facts"]
