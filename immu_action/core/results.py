"""Test results model: totals, failures and per-suite outcomes (pure values).

Every ``<testcase>`` element counts once; a suite that crashed or timed out without
JUnit counts as one error so that "no report" never reads as "all passed".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

FailureKind = Literal["failure", "error"]


@dataclass(frozen=True, kw_only=True)
class Totals:
    """Counts over test cases; ``passed`` excludes failed, errored and skipped cases."""

    tests: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    duration_s: float = 0.0

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            tests=self.tests + other.tests,
            passed=self.passed + other.passed,
            failed=self.failed + other.failed,
            errors=self.errors + other.errors,
            skipped=self.skipped + other.skipped,
            duration_s=round(self.duration_s + other.duration_s, 6),
        )

    @property
    def ok(self) -> bool:
        """True when nothing failed or errored."""
        return self.failed == 0 and self.errors == 0

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape shared by ``report``, ``test`` and ``run``."""
        return {
            "tests": self.tests,
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "skipped": self.skipped,
            "duration_s": round(self.duration_s, 3),
        }


@dataclass(frozen=True, kw_only=True)
class Failure:
    """One failed or errored test case, with where it happened when the JUnit says so."""

    suite: str
    classname: str
    name: str
    kind: FailureKind
    message: str
    details: str = ""
    file: str | None = None
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form of this failure."""
        return {
            "suite": self.suite,
            "classname": self.classname,
            "name": self.name,
            "kind": self.kind,
            "message": self.message,
            "details": self.details,
            "file": self.file,
            "line": self.line,
        }


@dataclass(frozen=True, kw_only=True)
class TestResults:
    """Totals plus the failures behind them (parsed from one or more JUnit files)."""

    __test__ = False  # not a pytest class

    totals: Totals = field(default_factory=Totals)
    failures: tuple[Failure, ...] = ()

    @staticmethod
    def merge(parts: Iterable[TestResults]) -> TestResults:
        """Sum totals and concatenate failures, in order."""
        totals = Totals()
        failures: list[Failure] = []
        for part in parts:
            totals = totals + part.totals
            failures.extend(part.failures)
        return TestResults(totals=totals, failures=tuple(failures))

    def as_dict(self) -> dict[str, Any]:
        """``{"totals": {...}, "failures": [...]}``: the ``report --json`` shape."""
        return {
            "totals": self.totals.as_dict(),
            "failures": [f.as_dict() for f in self.failures],
        }


class SuiteStatus(str, Enum):
    """How a suite of ``immu.yml`` ended."""

    PASSED = "passed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    ERROR = "error"


@dataclass(frozen=True, kw_only=True)
class SuiteResult:
    """The outcome of one suite run inside a disposable container."""

    name: str
    status: SuiteStatus
    exit_code: int | None
    results: TestResults
    duration_s: float
    log_tail: str = ""
    junit_files: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON form: status, exit code, totals, failures and the JUnit files found."""
        return {
            "name": self.name,
            "status": self.status.value,
            "exit_code": self.exit_code,
            "duration_s": round(self.duration_s, 3),
            "totals": self.results.totals.as_dict(),
            "failures": [f.as_dict() for f in self.results.failures],
            "junit_files": list(self.junit_files),
        }


def suite_crash(
    *, suite: str, message: str, log_tail: str, partial: TestResults | None = None
) -> TestResults:
    """Results for a suite that timed out or failed without (complete) JUnit.

    The crash is one error test case added to whatever JUnit the suite had written.
    """
    crash = TestResults(
        totals=Totals(tests=1, errors=1),
        failures=(
            Failure(
                suite=suite,
                classname=suite,
                name=f"{suite} (suite)",
                kind="error",
                message=message,
                details=log_tail,
            ),
        ),
    )
    return TestResults.merge([partial or TestResults(), crash])


Stage = Literal["spec", "build", "push", "tests", "attest", "promote", "internal"]
_HEADLINES = {"spec": "bad input", "build": "build failed", "push": "push failed",
              "tests": "test run failed", "attest": "storing the results failed",
              "promote": "promotion failed", "internal": "internal error"}


@dataclass(frozen=True, kw_only=True)
class RunFailure:
    """A run that stopped before it could finish: the stage, what went wrong, the exit code.

    Reported like results (status, check run, summary, outputs), so a required status never
    stays "expected" and the PR says why.
    """

    stage: Stage
    message: str
    exit_code: int
    refused: bool = False  # a policy refusal (exit 3), not a breakage

    @property
    def headline(self) -> str:
        """``build failed``, ``promotion refused``... for titles and statuses."""
        if self.refused:
            return "push refused" if self.stage == "push" else "promotion refused"
        return _HEADLINES[self.stage]

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"stage": self.stage, "headline": self.headline, "message": self.message,
                "exit_code": self.exit_code}


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """One pipeline run: the image under test (ID, and digest once pushed) and its suites."""

    image_id: str
    repository: str
    digest: str | None = None
    tested_is_shipped: bool | None = None
    suites: tuple[SuiteResult, ...] = ()
    failure: RunFailure | None = None
    digest_kind: str | None = None  # "index" or "manifest": what ``digest`` names
    services: Mapping[str, str] = field(default_factory=dict)  # service -> image ID
    # the results statement: result, predicate_type, statement/predicate paths, artifact
    attestation: Mapping[str, Any] | None = None

    @property
    def totals(self) -> Totals:
        """Totals over every suite."""
        total = Totals()
        for suite in self.suites:
            total = total + suite.results.totals
        return total

    @property
    def ok(self) -> bool:
        """True when every suite passed and at least one test case ran: an empty run proves
        nothing, so it is never green (and never promotes)."""
        return (self.failure is None and self.totals.tests > 0
                and all(s.status is SuiteStatus.PASSED for s in self.suites))

    @property
    def image_ref(self) -> str:
        """``repository@digest`` once pushed, else the local image ID."""
        return f"{self.repository}@{self.digest}" if self.digest else self.image_id

    def as_dict(self) -> dict[str, Any]:
        """The ``test``/``run --json`` shape."""
        return {
            "image_id": self.image_id,
            "repository": self.repository,
            "digest": self.digest,
            "image": self.image_ref,
            "tested_is_shipped": self.tested_is_shipped,
            "digest_kind": self.digest_kind,
            "ok": self.ok,
            "totals": self.totals.as_dict(),
            "suites": [s.as_dict() for s in self.suites],
            "failure": self.failure.as_dict() if self.failure else None,
            "attestation": dict(self.attestation) if self.attestation else None,
        }
