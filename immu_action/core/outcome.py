"""Decide how a suite ended from its exit code, timeout and JUnit (pure).

The rules, in order: a timeout is an error (plus whatever JUnit was written); a plain command
(``junit: false``) is one test case, passed when it exits 0; a failing command without JUnit
is one error carrying the log tail; a command that exits 0 but leaves no test case is an
error naming where JUnit was looked for (a wrong ``--junitxml`` path must not ship an
untested image); a failing command whose JUnit shows no failure is still not a pass (one
error says so); otherwise JUnit decides.
"""

from __future__ import annotations

from immu_action.core.results import (
    Failure,
    SuiteResult,
    SuiteStatus,
    TestResults,
    Totals,
    suite_crash,
)


def plain_command(*, suite: str, exit_code: int | None, duration_s: float,
                  log_tail: str) -> TestResults:
    """A ``junit: false`` suite as one test case: passed when the command exited 0."""
    if exit_code == 0:
        return TestResults(totals=Totals(tests=1, passed=1, duration_s=duration_s))
    failure = Failure(suite=suite, classname=suite, name=f"{suite} (command)", kind="failure",
                      message=f"suite {suite}: command exited with code {exit_code}",
                      details=log_tail)
    return TestResults(totals=Totals(tests=1, failed=1, duration_s=duration_s),
                       failures=(failure,))


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
    junit: bool = True,
    results_dir: str = "/immu/results",
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
    if not junit:
        plain = plain_command(suite=suite, exit_code=exit_code, duration_s=duration_s,
                              log_tail=log_tail)
        return result(SuiteStatus.PASSED if plain.totals.ok else SuiteStatus.FAILED, plain)
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
    if not has_junit:
        names = ", ".join(f.rsplit("/", 1)[-1] for f in junit_files)
        found = f"its JUnit ({names}) holds no test case" if names else "it wrote none there"
        return result(SuiteStatus.ERROR, crash(
            f"suite {suite}: command exited 0 but no test case was found: JUnit XML is "
            f"collected from {results_dir} in the container and {found}. Point the test "
            f"runner's JUnit output there (e.g. --junitxml={results_dir}/{suite}.xml), or set "
            f"`junit: false` on tests.{suite} if it is a plain command"))
    if not parsed.totals.ok:
        status = SuiteStatus.FAILED if parsed.totals.failed else SuiteStatus.ERROR
        return result(status, parsed)
    return result(SuiteStatus.PASSED, parsed)
