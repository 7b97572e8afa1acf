"""adapters.actions: GITHUB_OUTPUT heredocs, step summary limit, masks, warnings, context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from immu_action import output
from immu_action.adapters import actions
from immu_action.errors import BadInput
from tests.support.runner_files import parse_outputs


def test_outputs_are_multiline_safe_with_random_delimiters(tmp_path: Path) -> None:
    path = tmp_path / "out"
    hostile = "line1\nEOF\nimage<<EOF\nevil\nEOF\n::set-output name=x::y"
    assert actions.set_outputs({"digest": "sha256:1", "log": hostile}, path=str(path))
    text = path.read_text()
    assert parse_outputs(text) == {"digest": "sha256:1", "log": hostile}
    delims = [line.split("<<")[1] for line in text.splitlines() if line.startswith("digest<<")]
    assert delims[0].startswith("ghadelimiter_") and len(delims[0]) > 40


def test_output_name_with_newline_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid output name"):
        actions.set_outputs({"a\nb": "x"}, path=str(tmp_path / "out"))


def test_outside_actions_nothing_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert actions.set_outputs({"a": "b"}) is False
    assert actions.append_step_summary("# hi") is False


def test_step_summary_appends_and_stays_within_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    path.write_text("x" * 900)
    assert actions.append_step_summary("é" * 100, path=str(path), limit=1000)
    data = path.read_bytes()
    assert len(data) <= 1000
    assert data.endswith(b"(step summary truncated to GitHub's 1 MiB limit)\n")
    data.decode()  # still valid UTF-8: cut on a character boundary
    small = tmp_path / "small.md"
    actions.append_step_summary("# one", path=str(small))
    actions.append_step_summary("# two", path=str(small))
    assert small.read_text() == "# one\n# two\n"


def test_mask_and_warning_commands(monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    output.add_mask("s3cret\nline2")
    output.warning("50% done\nnext", title="immu: a, b")
    err = capsys.readouterr().err.splitlines()
    assert err == ["::add-mask::s3cret", "::add-mask::line2",
                   "::warning title=immu%3A a%2C b::50%25 done%0Anext"]


def test_warning_outside_actions_is_plain(monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    output.warning("no token", title="immu")
    output.add_mask("secret")
    assert capsys.readouterr().err == "warning: immu: no token\n"


def test_load_context_reads_the_event_file(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 3, "head": {
        "sha": "f" * 40, "repo": {"full_name": "acme/shop"}}}}))
    env = {"GITHUB_REPOSITORY": "acme/shop", "GITHUB_SHA": "1" * 40,
           "GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/3/merge",
           "GITHUB_EVENT_PATH": str(event)}
    ctx = actions.load_context(env)
    assert (ctx.sha, ctx.pr_number) == ("f" * 40, 3)
    event.write_text("{not json")
    with pytest.raises(BadInput, match=r"GITHUB_EVENT_PATH=.*cannot read the event payload"):
        actions.load_context(env)


def test_results_json_output_stays_small_for_huge_failure_lists() -> None:
    from immu_action.core.report import RESULTS_JSON_LIMIT, results_json
    from immu_action.core.results import (
        Failure,
        RunResult,
        SuiteResult,
        SuiteStatus,
        TestResults,
        Totals,
    )

    failures = tuple(Failure(suite="s", classname="c", name=f"t{i}", kind="failure",
                             message="boom", details="x" * 4000) for i in range(500))
    suite = SuiteResult(name="s", status=SuiteStatus.FAILED, exit_code=1, duration_s=1.0,
                        results=TestResults(totals=Totals(tests=500, failed=500),
                                            failures=failures))
    text = results_json(RunResult(image_id="sha256:" + "a" * 64, repository="r", suites=(suite,)))
    assert len(text) < RESULTS_JSON_LIMIT
    data = json.loads(text)
    assert data["totals"]["failed"] == 500 and len(data["suites"][0]["failures"]) == 50
    assert "trimmed" in data
