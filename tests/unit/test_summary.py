"""Markdown, status text and annotations: golden files plus GitHub's limits.

Regenerate the golden files after an intended change: ``UPDATE_GOLDEN=1 pytest tests/unit``.
"""

import dataclasses
import os
from pathlib import Path

import pytest

from immu_action.core.annotations import (
    ANNOTATION_TEXT_LIMIT,
    ANNOTATION_TITLE_LIMIT,
    FALLBACK_PATH,
    batched,
)
from immu_action.core.annotations import failure_annotations as annotations
from immu_action.core.junit import parse_junit
from immu_action.core.results import (
    Failure,
    RunResult,
    SuiteResult,
    SuiteStatus,
    TestResults,
    Totals,
    suite_crash,
)
from immu_action.core.summary import (
    STATUS_DESCRIPTION_LIMIT,
    results_markdown,
    run_markdown,
    status_description,
    totals_line,
)

GOLDEN = Path(__file__).parent / "golden"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "junit"
DIGEST = "sha256:" + "ab12" * 16
IMAGE_ID = "sha256:" + "9f8e" * 16


def assert_golden(name: str, text: str) -> None:
    """Compare with golden/<name>; UPDATE_GOLDEN=1 rewrites it instead."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def _suite(name: str, fixture: str, status: SuiteStatus, duration: float) -> SuiteResult:
    return SuiteResult(
        name=name,
        status=status,
        exit_code=0 if status is SuiteStatus.PASSED else 1,
        results=parse_junit(FIXTURES / fixture),
        duration_s=duration,
        junit_files=(f"/immu/results/{fixture}",),
    )


def _failed_run() -> RunResult:
    crash = suite_crash(suite="e2e", message="timed out after 10m", log_tail="waiting for db...")
    return RunResult(
        image_id=IMAGE_ID,
        repository="registry.test/acme/shop",
        digest=DIGEST,
        tested_is_shipped=True,
        suites=(
            _suite("unit", "pytest_xunit1.xml", SuiteStatus.FAILED, 12.5),
            _suite("js", "jest_junit.xml", SuiteStatus.FAILED, 3.25),
            SuiteResult(
                name="e2e",
                status=SuiteStatus.TIMED_OUT,
                exit_code=None,
                results=crash,
                duration_s=600.0,
            ),
        ),
    )


def _passed_run() -> RunResult:
    ok = TestResults(totals=Totals(tests=42, passed=40, skipped=2, duration_s=1.5))
    return RunResult(
        image_id=IMAGE_ID,
        repository="registry.test/acme/shop",
        suites=(
            SuiteResult(
                name="unit", status=SuiteStatus.PASSED, exit_code=0, results=ok, duration_s=2.0
            ),
        ),
    )


def test_golden_results_markdown() -> None:
    results = TestResults.merge(
        parse_junit(FIXTURES / n) for n in ("pytest_xunit2.xml", "surefire.xml", "mocha_junit.xml")
    )
    assert_golden("results_failed.md", results_markdown(results))


def test_golden_run_failed_with_promotion_section() -> None:
    section = "### Promotion\n\nNot promoted: tests failed."
    assert_golden("run_failed.md", run_markdown(_failed_run(), sections=[section]))


def test_golden_run_passed_unpushed() -> None:
    assert_golden("run_passed.md", run_markdown(_passed_run()))


def test_golden_run_trimmed() -> None:
    text = run_markdown(_failed_run(), limit=2_500)
    assert len(text) <= 2_500
    assert_golden("run_trimmed.md", text)


def _many_failures(count: int, details: str = "trace\n" * 50) -> RunResult:
    failures = tuple(
        Failure(
            suite="s",
            classname="c",
            name=f"test_{i}",
            kind="failure",
            message=f"boom {i}",
            details=details,
            file="tests/t.py",
            line=i + 1,
        )
        for i in range(count)
    )
    results = TestResults(totals=Totals(tests=count, failed=count), failures=failures)
    suite = SuiteResult(
        name="unit", status=SuiteStatus.FAILED, exit_code=1, results=results, duration_s=1.0
    )
    return RunResult(image_id=IMAGE_ID, repository="r", digest=DIGEST, suites=(suite,))


@pytest.mark.parametrize("limit", [1_500, 10_000, 65_000])
def test_run_markdown_fits_limit_and_counts_what_it_hides(limit: int) -> None:
    text = run_markdown(_many_failures(1_000), sections=["### Promotion\n\nskipped"], limit=limit)
    assert len(text) <= limit
    shown = sum(1 for line in text.splitlines() if line.split(". ", 1)[0].isdigit())
    hidden = int(text.split(" more failures not shown")[0].rsplit("\n", 1)[1])
    assert shown + hidden == 1_000
    assert text.rstrip().endswith("skipped")  # the sections survive trimming


def test_fixed_parts_over_limit_are_clipped() -> None:
    text = run_markdown(_passed_run(), sections=["x" * 5_000], limit=1_000)
    assert len(text) <= 1_000
    assert "truncated" in text


def test_untrusted_text_cannot_inject_markup() -> None:
    failure = Failure(
        suite="s",
        classname="c",
        name="t|<img src=x>",
        kind="failure",
        message="a | b <script>alert(1)</script> `code` @octocat #12",
        details="```\n</details>\n````",
    )
    text = results_markdown(TestResults(totals=Totals(tests=1, failed=1), failures=(failure,)))
    assert "``a | b <script>alert(1)</script> `code` @octocat #12``" in text  # inert code span
    assert "**`t|<img src=x>`**" in text
    assert "`````text" in text  # fence longer than any backtick run in the details


def test_totals_line_wording() -> None:
    assert totals_line(Totals()) == "No test cases were found."
    assert totals_line(Totals(tests=1, passed=1, duration_s=0.5)) == (
        "Passed: 1 passed of 1 test in 0.50 s"
    )
    assert totals_line(
        Totals(tests=5, passed=1, failed=2, errors=1, skipped=1, duration_s=123.4)
    ) == ("Failed: 2 failed, 1 error, 1 passed, 1 skipped of 5 tests in 123 s")


def test_status_description() -> None:
    assert status_description(_failed_run()) == (
        "Failed: 5/11 passed, 2 failed, 2 errors, 2 skipped on sha256:ab12ab12ab12"
    )
    assert status_description(_passed_run()) == (
        "Passed: 40/42 passed, 2 skipped on sha256:9f8e9f8e9f8e"
    )
    huge = dataclasses.replace(_many_failures(3), digest="x" * 500)
    assert len(status_description(huge)) <= STATUS_DESCRIPTION_LIMIT


def test_suite_failed_without_failing_cases_is_explained() -> None:
    suite = dataclasses.replace(_passed_run().suites[0], status=SuiteStatus.FAILED)
    text = run_markdown(dataclasses.replace(_passed_run(), suites=(suite,)))
    assert text.startswith("## immu: tests failed")
    assert "A suite failed without a failing test case" in text
    assert "| unit | failed | 42 | 40 | 0 | 0 | 2 | 2.00 s |" in text


def test_status_description_of_a_crash_without_failed_cases() -> None:
    run = dataclasses.replace(
        _passed_run(),
        suites=(dataclasses.replace(_passed_run().suites[0], status=SuiteStatus.ERROR),),
    )
    assert status_description(run).startswith("Failed (suite error): 40/42 passed")


def test_annotations_locations_and_fallback() -> None:
    failures = (
        parse_junit(FIXTURES / "pytest_xunit2.xml").failures
        + parse_junit(FIXTURES / "bazel_test.xml").failures
    )
    first, second = annotations(failures, strip_prefixes=["/app/"])
    assert (first.path, first.start_line, first.end_line) == ("shop/orders.py", 88, 88)
    assert first.annotation_level == "failure"
    assert first.title == "pytest: tests.test_api.TestOrders.test_create_order"
    assert first.message == "KeyError: 'id'"
    assert "return resp.json" in first.raw_details
    assert (second.path, second.start_line) == (FALLBACK_PATH, 1)
    assert second.as_dict() == {
        "path": "immu.yml",
        "start_line": 1,
        "end_line": 1,
        "annotation_level": "failure",
        "title": "//services/checkout:checkout_test",
        "message": "exited with error code 1",
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.path = "x"  # type: ignore[misc]


def test_annotations_respect_github_sizes() -> None:
    big = Failure(
        suite="s",
        classname="c" * 400,
        name="t",
        kind="error",
        message="\u00e9" * 70_000,
        details="\u2603" * 70_000,
        file="a.py",
        line=None,
    )
    (note,) = annotations([big])
    assert len(note.message.encode()) <= ANNOTATION_TEXT_LIMIT
    assert len(note.raw_details.encode()) <= ANNOTATION_TEXT_LIMIT
    assert note.raw_details.endswith("\u2603")
    assert len(note.title) <= ANNOTATION_TITLE_LIMIT
    assert note.start_line == 1  # file without a line: its first line


def test_batched() -> None:
    assert [len(b) for b in batched(range(120))] == [50, 50, 20]
    assert list(batched([], size=3)) == []
    assert list(batched("abc", size=2)) == [["a", "b"], ["c"]]
    with pytest.raises(ValueError, match="at least 1"):
        list(batched([1], size=0))
