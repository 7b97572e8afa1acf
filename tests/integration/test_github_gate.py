"""The promotion gate with facts fetched from the emulator: protected, rules, head, tags."""

from __future__ import annotations

from immu_action.adapters.github.gate import check_gate
from tests.support.github_emulator import GitHubEmulator
from tests.support.github_emulator.helpers import (
    OLD,
    SHA,
    client,
    context,
)

BRANCHES = ("main", "release")
RULE = {"type": "pull_request", "ruleset_source_type": "Repository",
        "ruleset_source": "acme/shop", "ruleset_id": 7,
        "parameters": {"dismiss_stale_reviews_on_push": True,
                       "require_code_owner_review": False, "require_last_push_approval": False,
                       "required_approving_review_count": 1,
                       "required_review_thread_resolution": False}}

pytest_plugins = ["tests.support.github_emulator.fixture"]


def test_push_to_protected_main_at_head_is_allowed(emulator: GitHubEmulator) -> None:
    decision = check_gate(client(emulator), context(emulator), tests_passed=True,
                          branches=BRANCHES)
    assert decision.allowed, decision.reasons
    assert [(c.method, c.path) for c in emulator.calls] == [
        ("GET", "/repos/acme/shop/branches/main")]  # protected flag set: rules not needed


def test_push_to_unprotected_listed_branch_is_refused_and_says_why(
        emulator: GitHubEmulator) -> None:
    emulator.state.add_branch("release", OLD, SHA)
    decision = check_gate(client(emulator), context(emulator, ref="refs/heads/release"),
                          tests_passed=True, branches=BRANCHES)
    assert not decision.allowed
    assert decision.reasons == ("branch 'release' is not protected on GitHub (needs branch "
                                "protection or an active ruleset)",)
    assert emulator.count("GET", "/rules/branches/release") == 1


def test_push_to_unlisted_branch_makes_no_calls(emulator: GitHubEmulator) -> None:
    decision = check_gate(client(emulator), context(emulator, ref="refs/heads/dev"),
                          tests_passed=True, branches=BRANCHES)
    assert not decision.allowed and "not listed in promote.branches" in decision.reasons[0]
    assert emulator.calls == []


def test_active_ruleset_counts_as_protected(emulator: GitHubEmulator) -> None:
    emulator.state.add_branch("release", OLD, SHA, rules=[RULE])
    decision = check_gate(client(emulator), context(emulator, ref="refs/heads/release"),
                          tests_passed=True, branches=BRANCHES)
    assert decision.allowed, decision.reasons


def test_stale_rerun_is_refused(emulator: GitHubEmulator) -> None:
    decision = check_gate(client(emulator), context(emulator, sha=OLD), tests_passed=True,
                          branches=BRANCHES)
    assert not decision.allowed
    assert "no longer the head of 'main'" in decision.reasons[0]


def test_any_api_error_means_not_protected(emulator: GitHubEmulator) -> None:
    emulator.inject("GET", "/branches/main", "502", times=10)
    decision = check_gate(client(emulator), context(emulator), tests_passed=True,
                          branches=BRANCHES)
    assert not decision.allowed
    assert decision.reasons[0].startswith("branch 'main' protection is unknown: GitHub: read "
                                          "branch 'main': HTTP 502 Server Error")
    assert emulator.count("GET", "/branches/main") == 4  # 1 + 3 bounded retries


def test_failed_tests_still_report_every_other_condition(emulator: GitHubEmulator) -> None:
    emulator.state.add_branch("release", OLD, SHA)
    decision = check_gate(client(emulator), context(emulator, ref="refs/heads/release"),
                          tests_passed=False, branches=BRANCHES)
    assert decision.reasons[0] == "tests did not pass" and len(decision.reasons) == 2


def test_tag_reachable_from_protected_main_is_allowed(emulator: GitHubEmulator) -> None:
    decision = check_gate(client(emulator), context(emulator, ref="refs/tags/v1.2.3", sha=OLD),
                          tests_passed=True, branches=BRANCHES)
    assert decision.allowed and decision.branch == "main"
    assert emulator.count("GET", "/compare/main...") == 1


def test_tag_not_reachable_from_listed_branch_is_refused(emulator: GitHubEmulator) -> None:
    emulator.state.add_branch("dev", OLD, "c" * 40)
    decision = check_gate(client(emulator), context(emulator, ref="refs/tags/v9", sha="c" * 40),
                          tests_passed=True, branches=BRANCHES)
    assert not decision.allowed and "not reachable from a branch listed" in decision.reasons[0]
    # compare against each listed branch; an unknown branch (404) counts as unreachable
    assert emulator.count("GET", "/compare/") == 2


def test_pull_request_and_fork_make_no_calls(emulator: GitHubEmulator) -> None:
    for ctx in (context(emulator, event="pull_request", ref="refs/pull/1/merge", pr=1),
                context(emulator, event="pull_request", ref="refs/pull/1/merge", pr=1,
                        fork=True)):
        assert not check_gate(client(emulator), ctx, tests_passed=True,
                              branches=BRANCHES).allowed
    assert emulator.calls == []


def test_no_token_fails_closed(emulator: GitHubEmulator) -> None:
    decision = check_gate(None, context(emulator), tests_passed=True, branches=BRANCHES)
    assert not decision.allowed and "protection is unknown" in decision.reasons[0]
