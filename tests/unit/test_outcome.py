"""How a suite's exit code, timeout and JUnit combine into its status (pure rules)."""

from __future__ import annotations

from immu_action.core.outcome import classify
from immu_action.core.results import Failure, SuiteStatus, TestResults, Totals

PASSING = TestResults(totals=Totals(tests=3, passed=3, duration_s=0.5))
FAILING = TestResults(
    totals=Totals(tests=2, passed=1, failed=1),
    failures=(Failure(suite="s", classname="c", name="t", kind="failure", message="boom"),),
)
EMPTY = TestResults()


def run(**kw: object) -> object:
    args: dict[str, object] = {"suite": "unit", "exit_code": 0, "timed_out": False,
                               "timeout_s": 60.0, "duration_s": 1.0, "log_tail": "last line",
                               "parsed": PASSING}
    args.update(kw)
    return classify(**args)  # type: ignore[arg-type]


def test_passing_junit_and_exit_zero_passes() -> None:
    r = run()
    assert r.status is SuiteStatus.PASSED and r.results == PASSING


def test_failures_in_junit_fail_even_with_exit_zero() -> None:
    r = run(parsed=FAILING)
    assert r.status is SuiteStatus.FAILED and r.results.totals.failed == 1


def test_nonzero_exit_without_junit_is_one_error_with_the_log() -> None:
    r = run(exit_code=2, parsed=EMPTY)
    assert r.status is SuiteStatus.ERROR
    assert r.results.totals == Totals(tests=1, errors=1)
    assert r.results.failures[0].details == "last line"
    assert "exited with code 2 and wrote no JUnit" in r.results.failures[0].message


def test_nonzero_exit_with_green_junit_is_not_a_pass() -> None:
    r = run(exit_code=1)
    assert r.status is SuiteStatus.ERROR
    assert r.results.totals.tests == 4 and r.results.totals.errors == 1


def test_nonzero_exit_with_failing_junit_keeps_the_failures() -> None:
    r = run(exit_code=1, parsed=FAILING)
    assert r.status is SuiteStatus.FAILED and r.results == FAILING


def test_timeout_adds_one_error_to_partial_results() -> None:
    r = run(exit_code=None, timed_out=True, timeout_s=120.0, parsed=FAILING)
    assert r.status is SuiteStatus.TIMED_OUT
    assert r.results.totals.tests == 3
    assert r.results.totals.failed == 1 and r.results.totals.errors == 1
    assert "timed out after 120s" in r.results.failures[-1].message


def test_a_problem_before_the_run_is_an_error() -> None:
    r = run(exit_code=None, parsed=EMPTY, problem="service db did not become healthy")
    assert r.status is SuiteStatus.ERROR
    assert r.results.failures[0].message == "service db did not become healthy"


def test_exit_zero_without_junit_is_an_error_naming_where_junit_was_looked_for() -> None:
    """A wrong --junitxml path must not read as a green suite (dorny's fail-on-empty)."""
    r = run(parsed=EMPTY, results_dir="/work/out")
    assert r.status is SuiteStatus.ERROR and r.results.totals == Totals(tests=1, errors=1)
    message = r.results.failures[0].message
    assert "no test case was found" in message and "/work/out" in message, message
    assert "--junitxml=/work/out/unit.xml" in message and "junit: false" in message, message


def test_exit_zero_with_a_junit_file_of_zero_cases_is_an_error_naming_it() -> None:
    r = run(parsed=EMPTY, junit_files=("/host/results/unit/empty.xml",))
    assert r.status is SuiteStatus.ERROR
    assert "its JUnit (empty.xml) holds no test case" in r.results.failures[0].message


def test_a_plain_command_is_one_test_case_passed_by_exit_zero() -> None:
    r = run(parsed=EMPTY, junit=False, duration_s=2.5)
    assert r.status is SuiteStatus.PASSED
    assert r.results.totals == Totals(tests=1, passed=1, duration_s=2.5)


def test_a_plain_command_that_exits_nonzero_is_one_failed_case_with_the_log() -> None:
    r = run(parsed=EMPTY, junit=False, exit_code=3)
    assert r.status is SuiteStatus.FAILED and r.results.totals == Totals(tests=1, failed=1,
                                                                         duration_s=1.0)
    assert "exited with code 3" in r.results.failures[0].message
    assert r.results.failures[0].details == "last line"


def test_a_run_without_a_single_test_case_is_never_ok() -> None:
    from immu_action.core.results import RunResult, SuiteResult

    empty = SuiteResult(name="unit", status=SuiteStatus.PASSED, exit_code=0, results=EMPTY,
                        duration_s=0.0)
    assert not RunResult(image_id="sha256:x", repository="r", suites=(empty,)).ok
    green = SuiteResult(name="unit", status=SuiteStatus.PASSED, exit_code=0, results=PASSING,
                        duration_s=0.0)
    assert RunResult(image_id="sha256:x", repository="r", suites=(green,)).ok


def test_timeout_wins_over_a_junit_file_cut_short() -> None:
    r = run(exit_code=None, timed_out=True, parsed=FAILING, problem="unreadable JUnit: x.xml")
    assert r.status is SuiteStatus.TIMED_OUT
    assert "timed out" in r.results.failures[-1].message
    assert "x.xml" in r.results.failures[-1].message
