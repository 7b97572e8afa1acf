"""Decide how a suite ended from its exit code, timeout and JUnit (pure).

The rules, in order: a timeout is an error (plus whatever JUnit was written); a failing
command without JUnit is one error carrying the log tail; a failing command whose JUnit
shows no failure is still not a pass (one error says so); otherwise JUnit decides.
"""

from __future__ import annotations

from immu_action.core.results import SuiteResult, SuiteStatus, TestResults, suite_crash


def classify(
    *,
    suite: str,
    exit_code: int | None,
    timed_out: bool,
    timeout_s: float,
    duration_s: float,
    log_tail: str,
    parsed: TestResults,
    junit_files: tuple[str, ...] = (),
    problem: str | None = None,
) -> SuiteResult:
    """A ``SuiteResult`` for one finished (or stopped) suite.

    ``problem`` is set when the suite could not run properly (a service that never got
    healthy, an unreadable JUnit file); it is reported as one error with the log tail.
    """

    def result(status: SuiteStatus, results: TestResults) -> SuiteResult:
        return SuiteResult(
            name=suite,
            status=status,
            exit_code=exit_code,
            results=results,
            duration_s=duration_s,
            log_tail=log_tail,
            junit_files=junit_files,
        )

    def crash(message: str) -> TestResults:
        return suite_crash(suite=suite, message=message, log_tail=log_tail, partial=parsed)

    if timed_out:  # a JUnit file cut short by the stop is expected then, not the news
        note = f" ({problem})" if problem else ""
        return result(
            SuiteStatus.TIMED_OUT,
            crash(f"suite {suite} timed out after {timeout_s:g}s and was stopped{note}"),
        )
    if problem is not None:
        return result(SuiteStatus.ERROR, crash(problem))
    has_junit = parsed.totals.tests > 0
    if exit_code not in (0, None) and not has_junit:
        return result(
            SuiteStatus.ERROR,
            crash(f"suite {suite}: command exited with code {exit_code} and wrote no JUnit"),
        )
    if exit_code not in (0, None) and parsed.totals.ok:
        return result(
            SuiteStatus.ERROR,
            crash(
                f"suite {suite}: command exited with code {exit_code} although its JUnit "
                "reports no failure"
            ),
        )
    if not parsed.totals.ok:
        status = SuiteStatus.FAILED if parsed.totals.failed else SuiteStatus.ERROR
        return result(status, parsed)
    return result(SuiteStatus.PASSED, parsed)
