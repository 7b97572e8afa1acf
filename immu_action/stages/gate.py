"""The gate stage: may this run promote? Fail closed; every reason it may not is kept for the
report (the decision itself is ``core.policy.decide``, the facts come from GitHub)."""

from __future__ import annotations

from typing import Any

from immu_action import output
from immu_action.core.context import GitHubContext
from immu_action.core.policy import PromotionDecision, Switch
from immu_action.core.results import RunResult
from immu_action.spec import Spec


def gate(spec: Spec, result: RunResult, *, choice: Switch, ctx: GitHubContext | None,
         gh: Any) -> tuple[bool, str | None, PromotionDecision | None]:
    """(promote now?, why not, the decision); a refusal is not raised: the report says why."""
    if choice == "false" or spec.promote is None:
        return False, None, None
    if ctx is None and choice == "auto":
        return False, None, None  # a laptop run: promotion is `immu promote`'s job
    decision = None
    why: str | None
    if ctx is None:
        why = ("promotion from `immu run` happens in GitHub Actions, where branch protection "
               "is checked; promote by hand with `immu promote REPOSITORY@DIGEST TAG...`")
    elif not result.digest:
        why = "nothing was pushed (pull request, or --no-push), so there is no digest to promote"
    else:
        from immu_action.adapters.github.gate import check_gate

        decision = check_gate(gh, ctx, tests_passed=result.ok, branches=spec.promote.branches)
        why = None if decision.allowed else "; ".join(decision.reasons)
    if why is not None:
        output.log_to_stderr(f"not promoting: {why}\n")
    return why is None, why, decision
