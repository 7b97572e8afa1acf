"""core.policy: the fail-closed promotion gate, every condition and their combinations."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from immu_action.core.policy import GateFacts, decide

SHA = "a" * 40
GOOD = GateFacts(tests_passed=True, event_name="push", ref_type="branch", ref_name="main",
                 sha=SHA, allowed_branches=("main", "release"), branch=None, protected=True,
                 head_sha=SHA)
TAG = replace(GOOD, ref_type="tag", ref_name="v1.2.3", branch="main", head_sha=None)


def test_protected_listed_branch_at_head_promotes() -> None:
    decision = decide(GOOD)
    assert decision.allowed and decision.reasons == () and decision.branch == "main"


def test_workflow_dispatch_promotes_like_push() -> None:
    assert decide(replace(GOOD, event_name="workflow_dispatch")).allowed


def test_tag_reachable_from_protected_branch_promotes_without_head_check() -> None:
    decision = decide(TAG)
    assert decision.allowed and decision.branch == "main"


@pytest.mark.parametrize(("change", "needle"), [
    ({"tests_passed": False}, "tests did not pass"),
    ({"event_name": "pull_request"}, "event 'pull_request' does not promote"),
    ({"event_name": "schedule"}, "event 'schedule' does not promote"),
    ({"is_fork": True}, "forks never promote"),
    ({"ref_name": "dev"}, "branch 'dev' is not listed in promote.branches (main, release)"),
    ({"allowed_branches": ()}, "promote.branches is empty"),
    ({"protected": False}, "branch 'main' is not protected"),
    ({"protected": None}, "branch 'main' protection is unknown (fail closed)"),
    ({"protected": None, "protection_error": "HTTP 502"},
     "branch 'main' protection is unknown: HTTP 502 (fail closed)"),
    ({"head_sha": "b" * 40}, "no longer the head of 'main' (head is bbbbbbbbbbbb)"),
    ({"head_sha": None}, "(head is unknown)"),
    ({"ref_type": ""}, "neither a branch nor a tag"),
])
def test_each_failed_condition_refuses_and_says_why(change: dict[str, object],
                                                    needle: str) -> None:
    decision = decide(replace(GOOD, **change))  # type: ignore[arg-type]
    assert not decision.allowed
    assert any(needle in r for r in decision.reasons), decision.reasons


@pytest.mark.parametrize(("change", "needle"), [
    ({"branch": None}, "not reachable from a branch listed"),
    ({"branch": "dev"}, "not reachable from a branch listed"),
    ({"protected": False}, "branch 'main' is not protected"),
    ({"tests_passed": False}, "tests did not pass"),
])
def test_tag_conditions(change: dict[str, object], needle: str) -> None:
    decision = decide(replace(TAG, **change))  # type: ignore[arg-type]
    assert not decision.allowed
    assert any(needle in r for r in decision.reasons), decision.reasons


def test_every_failure_is_listed_not_just_the_first() -> None:
    decision = decide(replace(GOOD, tests_passed=False, protected=False, head_sha="b" * 40))
    assert len(decision.reasons) == 3


def test_exhaustive_allowed_only_when_all_conditions_hold() -> None:
    """Every combination of the boolean conditions: allowed iff all hold (fail closed)."""
    events = ("push", "workflow_dispatch", "pull_request")
    for passed, event, listed, protected, at_head, fork in itertools.product(
            (True, False), events, (True, False), (True, False, None), (True, False),
            (True, False)):
        facts = replace(GOOD, tests_passed=passed, event_name=event,
                        ref_name="main" if listed else "dev", protected=protected,
                        head_sha=SHA if at_head else "c" * 40, is_fork=fork)
        expected = (passed and event != "pull_request" and listed and protected is True
                    and at_head and not fork)
        decision = decide(facts)
        assert decision.allowed is expected, facts
        assert (decision.reasons == ()) is expected


def test_as_dict() -> None:
    assert decide(GOOD).as_dict() == {"allowed": True, "reasons": [], "branch": "main"}
