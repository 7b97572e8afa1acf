"""publish() against the emulator: what each event writes, idempotency, API call budgets."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from immu_action.adapters.github.client import client_for
from immu_action.adapters.github.gate import check_gate
from immu_action.core.policy import PromotionDecision
from immu_action.errors import GitHubError
from immu_action.stages.report import publish
from tests.support.github_emulator import GitHubEmulator
from tests.support.github_emulator.helpers import (
    DIGEST,
    SHA,
    client,
    context,
    run_result,
)

PROMOTED = {"digest": DIGEST, "repository": "registry.test/acme/shop",
            "tags": ["1.2.3", "1.2", "latest"], "environment": "production"}
# The budgets reported in the issue: fixed, whatever the run's size (2 suites here).
PR_CALLS = 7  # 3 statuses + check run (find, create|update) + comment (find, create|edit)
TAG_CALLS_FIRST = 12  # 3 + 2 + release (find 404, create) + 3 uploads + deployment (2)
TAG_CALLS_AGAIN = 8  # 3 + 2 + release (find; section and asset digests unchanged) + 2
TAG_CALLS_CHANGED = 11  # 3 + 2 + release (find, edit) + test-results.json (delete, upload) + 2

pytest_plugins = ["tests.support.github_emulator.fixture"]


def _pr(emu: GitHubEmulator, **kw: Any) -> Any:
    return context(emu, event="pull_request", ref="refs/pull/7/merge", pr=7, **kw)


def test_green_pull_request_writes_statuses_check_run_and_one_comment(
        emulator: GitHubEmulator, actions_env: dict[str, Any]) -> None:
    outcome = publish(run_result(), _pr(emulator), promotion=None, gh=client(emulator),
                      decision=PromotionDecision(allowed=False, reasons=("event 'pull_request'"
                                                 " does not promote",)))
    assert outcome.degraded is None
    assert len(emulator.calls) == PR_CALLS
    contexts = {s["context"]: s for s in emulator.state.statuses}
    assert set(contexts) == {"immu/unit", "immu/api", "immu"}
    assert all(s["state"] == "success" and s["sha"] == SHA for s in contexts.values())
    assert contexts["immu"]["description"] == "Passed: 40/40 passed on sha256:dddddddddddd"
    (run,) = emulator.state.check_runs.values()
    # The overall status links the check run's summary (it may sit in another check suite);
    # the per-suite ones link the workflow run.
    assert contexts["immu"]["target_url"] == run["html_url"]
    assert contexts["immu/unit"]["target_url"] == "https://github.example/acme/shop/actions/runs/42"
    assert (run["name"], run["head_sha"], run["conclusion"]) == (
        "immu-action: tested image", SHA, "success")
    assert run["external_id"].startswith("immu-action:")
    assert f"registry.test/acme/shop@{DIGEST}" in run["output"]["summary"]
    assert "does not promote" in run["output"]["summary"]
    (comment,) = emulator.state.comments.values()
    assert comment["body"].startswith("<!-- immu-action -->")
    assert emulator.state.releases == {} and emulator.state.deployments == {}
    summary = actions_env["summary"].read_text()
    assert "## immu: tests passed" in summary
    assert "digest<<ghadelimiter_" in actions_env["output"].read_text()


def test_pull_request_rerun_updates_instead_of_duplicating(
        emulator: GitHubEmulator, actions_env: dict[str, Any]) -> None:
    gh = client(emulator)
    publish(run_result(), _pr(emulator), promotion=None, gh=gh)
    publish(run_result(failures=2), _pr(emulator), promotion=None, gh=gh)
    assert len(emulator.calls) == 2 * PR_CALLS
    assert len(emulator.state.check_runs) == 1 and len(emulator.state.comments) == 1
    (run,) = emulator.state.check_runs.values()
    assert run["conclusion"] == "failure"
    assert len(emulator.state.annotations[run["id"]]) == 2
    (comment,) = emulator.state.comments.values()
    assert "tests failed" in comment["body"]
    assert emulator.count("PATCH", "/issues/comments/") == 1


def test_push_with_promotion_records_a_deployment(
        emulator: GitHubEmulator, actions_env: dict[str, Any]) -> None:
    outcome = publish(run_result(), context(emulator), promotion=PROMOTED,
                      gh=client(emulator))
    (deployment,) = emulator.state.deployments.values()
    assert deployment["environment"] == "production" and deployment["sha"] == SHA
    assert deployment["payload"] == {"digest": DIGEST, "tags": ["1.2.3", "1.2", "latest"],
                                     "image": f"registry.test/acme/shop@{DIGEST}"}
    (statuses,) = emulator.state.deployment_statuses.values()
    assert [s["state"] for s in statuses] == ["success"]
    assert outcome.deployment_id == deployment["id"]
    assert "Promoted `sha256:" in next(iter(emulator.state.check_runs.values()))[
        "output"]["summary"]
    assert "promoted-tags<<" in actions_env["output"].read_text()


def test_tag_push_release_section_and_assets_idempotent(
        emulator: GitHubEmulator, actions_env: dict[str, Any]) -> None:
    gh, ctx = client(emulator), context(emulator, ref="refs/tags/v1.2.3")
    publish(run_result(), ctx, promotion=PROMOTED, gh=gh, junit_xml=b"<testsuites/>")
    assert len(emulator.calls) == TAG_CALLS_FIRST
    (release,) = emulator.state.releases.values()
    release["body"] = "Hand-written notes.\n\n" + release["body"] + "\nFooter by a human.\n"
    publish(run_result(), ctx, promotion=PROMOTED, gh=gh, junit_xml=b"<testsuites/>")
    assert len(emulator.calls) == TAG_CALLS_FIRST + TAG_CALLS_AGAIN
    (release,) = emulator.state.releases.values()
    body = release["body"]
    assert body.startswith("Hand-written notes.") and body.endswith("Footer by a human.\n")
    assert body.count("<!-- immu:begin -->") == 1 and body.count("<!-- immu:end -->") == 1
    assert f"- Digest: `{DIGEST}`" in body and "`1.2.3`, `1.2`, `latest`" in body
    names = sorted(a["name"] for a in emulator.state.assets.values())
    assert names == ["junit.xml", "promotion.json", "test-results.json"]  # no duplicates
    data = {a["name"]: emulator.state.asset_bytes[i] for i, a in emulator.state.assets.items()}
    assert json.loads(data["test-results.json"])["digest"] == DIGEST
    assert json.loads(data["promotion.json"])["tags"] == ["1.2.3", "1.2", "latest"]
    assert data["junit.xml"] == b"<testsuites/>"
    assert len(emulator.state.check_runs) == 1
    failed = run_result(failures=1)  # a later attempt with other results: replaced in place
    publish(failed, ctx, promotion=PROMOTED, gh=gh, junit_xml=b"<testsuites/>")
    assert len(emulator.calls) == TAG_CALLS_FIRST + TAG_CALLS_AGAIN + TAG_CALLS_CHANGED
    assert emulator.count("DELETE", "/releases/assets/") == 1  # only test-results.json changed
    assert len(emulator.state.assets) == 3 and len(emulator.state.releases) == 1
    data = {a["name"]: emulator.state.asset_bytes[i] for i, a in emulator.state.assets.items()}
    assert json.loads(data["test-results.json"])["totals"]["failed"] == 1


def test_fork_pull_request_writes_only_the_step_summary(
        emulator: GitHubEmulator, actions_env: dict[str, Any],
        capsys: pytest.CaptureFixture[str]) -> None:
    emulator.read_only = True
    outcome = publish(run_result(), _pr(emulator, fork=True), promotion=None,
                      gh=client(emulator))
    assert emulator.calls == []
    assert outcome.degraded and "fork" in outcome.degraded
    assert "## immu: tests passed" in actions_env["summary"].read_text()
    assert capsys.readouterr().err.count("::warning") == 1


def test_read_only_token_degrades_after_one_refused_write(
        emulator: GitHubEmulator, actions_env: dict[str, Any],
        capsys: pytest.CaptureFixture[str]) -> None:
    emulator.read_only = True
    outcome = publish(run_result(failures=1), _pr(emulator), promotion=None,
                      gh=client(emulator))
    # one look-up of our check run, then the first write: a plain 403 is final
    assert [(c.method, c.status) for c in emulator.calls] == [("GET", 200), ("POST", 403)]
    assert outcome.wrote == ("step_summary", "outputs")
    assert outcome.degraded and "Resource not accessible by integration" in outcome.degraded
    assert capsys.readouterr().err.count("::warning") == 1
    assert "## immu: tests failed" in actions_env["summary"].read_text()


def test_no_token_writes_step_summary_and_warns(
        emulator: GitHubEmulator, actions_env: dict[str, Any]) -> None:
    outcome = publish(run_result(), context(emulator), promotion=None, gh=None)
    assert outcome.degraded and "no GitHub token" in outcome.degraded
    assert outcome.wrote == ("step_summary", "outputs") and emulator.calls == []


def test_130_failures_make_three_annotation_batches_once(
        emulator: GitHubEmulator, actions_env: dict[str, Any]) -> None:
    gh, ctx = client(emulator), context(emulator)
    publish(run_result(failures=130), ctx, promotion=None, gh=gh)
    assert emulator.count("POST", "/check-runs$") == 1
    assert emulator.count("PATCH", "/check-runs/") == 2  # 50 + 50 + 30
    (run,) = emulator.state.check_runs.values()
    notes = emulator.state.annotations[run["id"]]
    assert len(notes) == 130 and notes[129]["start_line"] == 10 + 129
    assert run["output"]["annotations_count"] == 130
    publish(run_result(failures=130), ctx, promotion=None, gh=gh)  # re-run: same failures
    assert len(emulator.state.annotations[run["id"]]) == 130  # not appended twice
    publish(run_result(failures=3), ctx, promotion=None, gh=gh)  # different failures
    assert len(emulator.state.check_runs) == 2  # a fresh run instead of mixing annotations
    publish(run_result(failures=3), ctx, promotion=None, gh=gh)  # ...which later runs reuse
    assert len(emulator.state.check_runs) == 2
    newest = max(emulator.state.check_runs)
    assert len(emulator.state.annotations[newest]) == 3


def test_summary_that_needs_trimming_stays_within_github_limits(
        emulator: GitHubEmulator, actions_env: dict[str, Any]) -> None:
    publish(run_result(failures=60, message_size=3000), _pr(emulator), promotion=None,
            gh=client(emulator))
    (run,) = emulator.state.check_runs.values()
    summary = run["output"]["summary"]
    assert len(summary) <= 65_535 and "more failures not shown" in summary
    (comment,) = emulator.state.comments.values()
    assert len(comment["body"]) <= 65_536
    assert len(emulator.state.annotations[run["id"]]) == 60


def test_push_to_unprotected_branch_reports_why_nothing_was_promoted(
        emulator: GitHubEmulator, actions_env: dict[str, Any]) -> None:
    emulator.state.add_branch("release", SHA)
    ctx = context(emulator, ref="refs/heads/release")
    gh = client_for(ctx)
    decision = check_gate(gh, ctx, tests_passed=True, branches=("main", "release"))
    assert not decision.allowed
    outcome = publish(run_result(), ctx, promotion=None, gh=gh, decision=decision)
    (run,) = emulator.state.check_runs.values()
    assert "Not promoted:\n- branch 'release' is not protected" in run["output"]["summary"]
    assert "branch 'release' is not protected" in actions_env["summary"].read_text()
    assert emulator.state.deployments == {} and outcome.deployment_id is None
    assert len(emulator.calls) == 2 + 5  # gate: branch + rules; 3 statuses + check run (2)


def test_client_for_needs_a_token(emulator: GitHubEmulator) -> None:
    ctx = context(emulator)
    assert client_for(ctx) is not None
    assert client_for(replace(ctx, token="")) is None
    assert emulator.calls == []  # building a client makes no request


def test_existing_release_keeps_notes_draft_and_prerelease(
        emulator: GitHubEmulator, actions_env: dict[str, Any]) -> None:
    gh = client(emulator)
    gh.repo.create_git_release(tag="v2.0.0-rc.1", name="RC", message="Human notes",
                               draft=True, prerelease=True)
    publish(run_result(), context(emulator, ref="refs/tags/v2.0.0-rc.1"), promotion=None,
            gh=gh)
    (release,) = emulator.state.releases.values()
    assert release["body"].startswith("Human notes\n\n<!-- immu:begin -->")
    assert (release["name"], release["draft"], release["prerelease"]) == ("RC", True, True)


def test_new_release_for_a_prerelease_tag_is_marked_prerelease(
        emulator: GitHubEmulator, actions_env: dict[str, Any]) -> None:
    publish(run_result(), context(emulator, ref="refs/tags/v3.0.0-beta.2"), promotion=None,
            gh=client(emulator))
    (release,) = emulator.state.releases.values()
    assert release["prerelease"] is True and release["tag_name"] == "v3.0.0-beta.2"


def test_permission_lost_midway_keeps_what_was_written(
        emulator: GitHubEmulator, actions_env: dict[str, Any]) -> None:
    emulator.inject("GET", "/issues/7/comments", "forbidden")
    outcome = publish(run_result(), _pr(emulator), promotion=None, gh=client(emulator))
    assert outcome.wrote == ("step_summary", "outputs", "check_run", "statuses")
    assert outcome.degraded and "HTTP 403" in outcome.degraded
    assert outcome.check_run_id is not None and outcome.comment_id is None


def test_github_down_after_retries_raises_after_the_step_summary(
        emulator: GitHubEmulator, actions_env: dict[str, Any]) -> None:
    emulator.inject("POST", "/check-runs", "502", times=100)
    with pytest.raises(GitHubError, match=r"check run 'immu-action: tested image'.*HTTP 502"):
        publish(run_result(), _pr(emulator), promotion=None, gh=client(emulator))
    assert "## immu: tests passed" in actions_env["summary"].read_text()
    assert emulator.state.comments == {}  # stopped at the first external failure


@pytest.mark.parametrize("job", ["immu", "immu-action: tested image"])
def test_a_job_check_run_is_never_edited_even_when_it_shares_our_name(
        emulator: GitHubEmulator, actions_env: dict[str, Any], job: str) -> None:
    """Every Actions job is a check run (Actions app, in progress) named after the job: the
    README's job is ``immu``, and a user may call a job like our check run. Ours is found by
    its mark, never by name alone; the emulator flags any edit of a job's check run."""
    job_id = emulator.start_job(job, SHA)
    for _ in range(2):  # the second publish is a re-run: it must find ours, not the job's
        outcome = publish(run_result(), _pr(emulator), promotion=None, gh=client(emulator))
    assert emulator.violations == []
    job_run = emulator.state.check_runs[job_id]
    assert job_run["status"] == "in_progress" and job_run["output"]["summary"] is None
    ours = [r for i, r in emulator.state.check_runs.items() if i != job_id]
    assert [r["id"] for r in ours] == [outcome.check_run_id]
    assert emulator.count("POST", "/check-runs$") == 1


def test_a_check_name_of_the_users_choice_is_used(
        emulator: GitHubEmulator, actions_env: dict[str, Any]) -> None:
    publish(run_result(), _pr(emulator), promotion=None, gh=client(emulator),
            check_name="release gate")
    (run,) = emulator.state.check_runs.values()
    assert run["name"] == "release gate"


def test_the_emulator_flags_an_edit_of_a_job_check_run(emulator: GitHubEmulator) -> None:
    """The guard above is only worth something if the emulator notices the edit."""
    job_id = emulator.start_job("immu", SHA)
    gh = client(emulator)
    gh.repo.get_check_run(job_id).edit(status="completed", conclusion="success")
    assert any("workflow job 'immu'" in v for v in emulator.violations), emulator.violations
    emulator.violations.clear()
