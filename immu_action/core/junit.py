"""JUnit XML -> ``TestResults``, streamed (pure apart from reading the named files).

One pass of ``xml.etree.ElementTree.iterparse`` (the C parser): each ``<testcase>`` is
counted when it ends, then removed from its parent so memory stays flat whatever the
size of the file. Accepted: ``<testsuites>`` or ``<testsuite>`` roots, nested suites,
and the dialects of pytest, jest-junit, mocha, Surefire, go-junit-report, gotestsum,
bazel and googletest. Documents with an internal DTD subset (``<!ENTITY``, the
billion-laughs and external-entity attacks) are refused before parsing, as defusedxml does.
"""

from __future__ import annotations

import gc
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from immu_action.core.locate import locate
from immu_action.core.prolog import check_prolog
from immu_action.core.results import Failure, FailureKind, TestResults, Totals
from immu_action.errors import BadInput

ROOTS = ("testsuites", "testsuite")
MESSAGE_LIMIT = 4 * 1024  # a message is a headline; keep its head
DETAILS_LIMIT = 8 * 1024  # a stack trace's useful end is its tail
# Messages some tools write for every failure; the text says more (go-junit-report, gotestsum).
_GENERIC_MESSAGES = frozenset({"", "failed", "failure", "error"})
_INF = float("inf")
_GO_NOISE = ("=== RUN", "=== PAUSE", "=== CONT", "--- FAIL", "--- PASS", "--- SKIP")


def _seconds(value: str | None) -> float:
    """A ``time`` attribute; garbage, negative or missing counts as 0 (never fails a report)."""
    if not value:
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        try:  # Surefire in some locales writes "1,234.5"
            seconds = float(value.replace(",", ""))
        except ValueError:
            return 0.0
    return seconds if 0.0 <= seconds < _INF else 0.0


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(_GO_NOISE):
            return line
    return ""


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "[...]\n" + text[-limit:]


@dataclass
class _Acc:
    """Mutable counters for one file (kept out of the frozen result types)."""

    stem: str
    tests: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    duration: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    # (name, file, cases counted before it opened) of each open <testsuite>, innermost last
    suites: list[tuple[str, str | None, int]] = field(default_factory=list)

    def result(self) -> TestResults:
        totals = Totals(
            tests=self.tests,
            passed=self.tests - self.failed - self.errors - self.skipped,
            failed=self.failed,
            errors=self.errors,
            skipped=self.skipped,
            duration_s=round(self.duration, 6),
        )
        return TestResults(totals=totals, failures=tuple(self.failures))

    def failure(self, case: ET.Element, problem: ET.Element, kind: FailureKind) -> None:
        """Record a failed/errored case with its message, details and location."""
        suite, suite_file, _ = self.suites[-1] if self.suites else (self.stem, None, 0)
        text = (problem.text or "").strip()
        message = problem.get("message") or ""
        if message.strip().lower() in _GENERIC_MESSAGES:
            message = _first_line(text) or message or problem.get("type") or kind
        where = locate(text or message, file=case.get("file") or suite_file, line=case.get("line"))
        self.failures.append(
            Failure(
                suite=suite,
                classname=case.get("classname") or "",
                name=case.get("name") or "(unnamed)",
                kind=kind,
                message=message.strip()[:MESSAGE_LIMIT],
                details=_tail(text, DETAILS_LIMIT),
                file=where[0],
                line=where[1],
            )
        )

    def outcome(self, case: ET.Element) -> None:
        """Classify a ``<testcase>`` that has children or a status (already counted once)."""
        failure = error = skipped = None
        for child in case:
            tag = child.tag
            if tag == "failure" and failure is None:
                failure = child
            elif tag == "error" and error is None:
                error = child
            elif tag == "skipped":
                skipped = child
            # flakyFailure/rerunFailure etc. alone mean "passed on a rerun": passed.
        if failure is not None:
            self.failed += 1
            self.failure(case, failure, "failure")
        elif error is not None:
            self.errors += 1
            self.failure(case, error, "error")
        elif skipped is not None or case.get("status") == "notrun":  # googletest: disabled
            self.skipped += 1

    def empty_suite(self, suite: ET.Element, name: str) -> None:
        """A suite without test cases that still reports errors counts as one error.

        Some reporters note a suite that failed to run (a syntax error, a failing
        class-level fixture) only as ``<testsuite errors="1">`` or a suite-level
        ``<error>``; that must not read as "nothing failed".
        """
        problem = next((c for c in suite if c.tag in ("error", "failure")), None)
        declared = max(_count(suite.get("errors")), _count(suite.get("failures")))
        if problem is None and not declared:
            return
        self.tests += 1
        self.errors += 1
        text = (problem.text if problem is not None else None) or suite.findtext("system-err")
        message = problem.get("message") if problem is not None else None
        where = locate(text or "")
        self.failures.append(
            Failure(
                suite=name,
                classname=name,
                name=f"{name} (suite)",
                kind="error",
                message=(
                    message
                    or f"the suite reports {declared} failed or errored "
                    "test(s) but contains no test case"
                )[:MESSAGE_LIMIT],
                details=_tail((text or "").strip(), DETAILS_LIMIT),
                file=where[0],
                line=where[1],
            )
        )


def _count(value: str | None) -> int:
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0


def _not_xml(source: Path, e: ET.ParseError) -> BadInput:
    line, col = e.position
    reason = str(e).rsplit(": line ", 1)[0]  # expat appends the position we already give
    return BadInput(
        f"{source}: not well-formed XML at line {line}, column {col + 1} ({reason}); "
        "expected a JUnit XML report"
    )


class NotJUnit(BadInput):
    """Well-formed XML whose root is not a JUnit element (e.g. a coverage.xml beside it)."""


def _not_junit(source: Path, tag: str) -> BadInput:
    return NotJUnit(
        f"{source}: not a JUnit report: the root element is <{tag}>, "
        "expected <testsuites> or <testsuite>"
    )


def _walk(fh: BinaryIO, source: Path, acc: _Acc) -> None:
    """The streaming pass: counts cases and drops every processed element.

    The passing-case path is inlined (no call, no regex): it runs 100,000 times a file.
    """
    stack: list[ET.Element] = []  # open elements, so a finished one leaves its parent
    tests, duration = 0, 0.0
    try:
        for event, elem in ET.iterparse(fh, events=("start", "end")):
            if event == "start":
                if elem.tag == "testsuite":
                    acc.suites.append((elem.get("name") or acc.stem, elem.get("file"), tests))
                elif not stack and elem.tag not in ROOTS:
                    raise _not_junit(source, elem.tag)
                stack.append(elem)
                continue
            stack.pop()
            tag = elem.tag
            if tag == "testcase":
                tests += 1
                time = elem.get("time")
                if time:
                    try:
                        seconds = float(time)
                    except ValueError:
                        seconds = _seconds(time)
                    if 0.0 <= seconds < _INF:  # also false for NaN
                        duration += seconds
                if len(elem) or elem.get("status"):
                    acc.outcome(elem)
            elif tag == "testsuite":
                name, _, before = acc.suites.pop()
                if tests == before:  # no test case inside, nested ones included
                    acc.empty_suite(elem, name)
            else:
                continue
            if stack:  # drop the finished element: memory stays flat
                stack[-1].remove(elem)
    finally:  # a file cut short still yields the cases before the break
        acc.tests += tests
        acc.duration += duration


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: the parse allocates two objects per element and makes no
    reference cycles, yet a young-generation pass every 700 allocations costs ~20%."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read(path: Path, acc: _Acc) -> None:
    """Stream ``path`` into ``acc``; I/O errors become ``BadInput``, ``ParseError`` passes."""
    try:
        with path.open("rb") as fh:
            check_prolog(fh, path)
            fh.seek(0)
            with _gc_paused():
                _walk(fh, path, acc)
    except IsADirectoryError as e:
        raise BadInput(f"{path}: is a directory; pass it as a PATH to search it") from e
    except FileNotFoundError as e:
        raise BadInput(f"{path}: no such JUnit file") from e
    except OSError as e:
        raise BadInput(f"{path}: cannot read JUnit file: {e.strerror or e}") from e


def parse_junit(path: Path) -> TestResults:
    """Totals and failures of one JUnit XML file; ``BadInput`` names the file if it is bad."""
    acc = _Acc(stem=path.stem)
    try:
        _read(path, acc)
    except ET.ParseError as e:
        raise _not_xml(path, e) from e
    return acc.result()


def parse_junit_partial(path: Path) -> tuple[TestResults, BadInput | None]:
    """Like ``parse_junit``, but a file cut short (a suite killed while writing it) gives
    the cases completed before the break and the error, for ``suite_crash(partial=...)``.

    Missing, refused (DTD/entities) and non-JUnit files still raise ``BadInput``.
    """
    acc = _Acc(stem=path.stem)
    try:
        _read(path, acc)
    except ET.ParseError as e:
        return acc.result(), _not_xml(path, e)
    return acc.result(), None


def junit_files(paths: Iterable[Path]) -> list[Path]:
    """Files to parse: each file as given, each directory's ``*.xml`` (recursive, sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.xml") if p.is_file()))
        elif path.exists():
            files.append(path)
        else:
            raise BadInput(f"{path}: no such file or directory (expected JUnit XML or a directory)")
    return files


def parse_paths(paths: Iterable[Path]) -> TestResults:
    """Merged results of every JUnit file in ``paths`` (files or directories)."""
    return TestResults.merge(parse_junit(p) for p in junit_files(paths))


def iter_cases(path: Path) -> Iterator[tuple[str, str, str, float]]:
    """``(testsuite, classname.name, status, seconds)`` of each test case in ``path``, status
    ``passed``, ``failed`` (failure or error) or ``skipped``: the per-test view the results
    attestation lists (a second, streamed pass; ``parse_junit`` keeps only the failures).
    A file cut short yields the cases before the break."""
    suites: list[str] = []
    stack: list[ET.Element] = []
    try:
        with path.open("rb") as fh:
            check_prolog(fh, path)
            fh.seek(0)
            for event, elem in ET.iterparse(fh, events=("start", "end")):
                if event == "start":
                    if elem.tag == "testsuite":
                        suites.append(elem.get("name") or path.stem)
                    stack.append(elem)
                    continue
                stack.pop()
                if elem.tag == "testcase":
                    tags = {child.tag for child in elem}
                    status = ("failed" if tags & {"failure", "error"} else
                              "skipped" if "skipped" in tags or elem.get("status") == "notrun"
                              else "passed")
                    classname, name = elem.get("classname") or "", elem.get("name") or "(unnamed)"
                    yield (suites[-1] if suites else path.stem,
                           f"{classname}.{name}" if classname else name, status,
                           _seconds(elem.get("time")))
                elif elem.tag == "testsuite":
                    suites.pop()
                else:
                    continue
                if stack:
                    stack[-1].remove(elem)
    except (ET.ParseError, OSError, BadInput):
        return
