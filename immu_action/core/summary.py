"""Test results and runs -> GitHub markdown and status text (pure; annotations are in
``core.annotations``).

Everything here respects GitHub's size limits (constants below), so callers can post the
output as is: a check-run summary, a step summary, a commit status or annotation batches.
Untrusted test output is escaped (inline) or fenced (details) so it cannot inject markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from immu_action.core.results import Failure, RunResult, SuiteStatus, TestResults, Totals

CHECK_RUN_SUMMARY_LIMIT = 65_535  # characters in a check run's output.summary
STEP_SUMMARY_LIMIT = 1024 * 1024  # bytes of $GITHUB_STEP_SUMMARY per step
STATUS_DESCRIPTION_LIMIT = 140  # characters of a commit status description

_INLINE_LIMIT = 300  # a message in a list stays a one-liner
_DETAILS_LIMIT = 4_000  # per failure in markdown; the full text is in the annotation
_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")
_STATUS_WORDS = {
    SuiteStatus.PASSED: "passed",
    SuiteStatus.FAILED: "failed",
    SuiteStatus.TIMED_OUT: "timed out",
    SuiteStatus.ERROR: "error",
}
CHECK_RUN_NAME = "immu-action: tested image"
"""Default check-run name: every Actions job is a check run named after the job (the README's
job is ``immu``), so ours needs a name no job is likely to carry (input ``check-name``)."""


def _inline(text: str, limit: int = _INLINE_LIMIT) -> str:
    """One escaped markdown line: whitespace collapsed, markup neutralised, trimmed."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 3] + "..."
    return _SPECIAL.sub(r"\\\1", flat.replace("&", "&amp;"))


def _code(text: str, limit: int = _INLINE_LIMIT) -> str:
    """An inline code span of one line: test output in it renders no markup, no @mention
    and no #123 issue link (an escaped ``@user`` would still notify people)."""
    flat = " ".join(text.split())
    if len(flat) > limit:
        flat = flat[: limit - 3] + "..."
    if not flat:
        return "` `"
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{ticks}{pad}{flat}{pad}{ticks}"


def _fenced(text: str) -> str:
    """A code block whose fence is longer than any backtick run inside the text."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 100 else f"{value:.2f} s"


def totals_line(totals: Totals) -> str:
    """``Failed: 2 failed, 1 error, 40 passed, 3 skipped of 46 tests in 1.20 s``."""
    if totals.tests == 0:
        return "No test cases were found."
    parts = [f"{totals.failed} failed"] if totals.failed else []
    if totals.errors:
        parts.append(f"{totals.errors} error{'s' if totals.errors != 1 else ''}")
    parts.append(f"{totals.passed} passed")
    if totals.skipped:
        parts.append(f"{totals.skipped} skipped")
    verdict = "Passed" if totals.ok else "Failed"
    tests = f"{totals.tests} test{'s' if totals.tests != 1 else ''}"
    return f"{verdict}: {', '.join(parts)} of {tests} in {_seconds(totals.duration_s)}"


def where(failure: Failure) -> str:
    """``file:line``, ``file``, or "" when the JUnit gave no location."""
    if not failure.file:
        return ""
    return f"{failure.file}:{failure.line}" if failure.line else failure.file


def case_name(failure: Failure) -> str:
    """``classname.name``, without repeating one when it contains the other (jest, mocha)."""
    classname, name = failure.classname, failure.name
    if not classname or classname in name:
        return name or failure.suite
    if name in classname:
        return classname
    return f"{classname}.{name}"


def failure_markdown(failure: Failure, number: int, *, run_suite: str | None = None) -> str:
    """One numbered list item: name, kind, location, message and a folded details block.

    ``run_suite`` is the ``immu.yml`` suite that produced the failure, shown before the
    JUnit suite when they differ.
    """
    suite = failure.suite
    if run_suite and run_suite != suite:
        suite = f"{run_suite} / {suite}"
    head = f"{number}. **{_code(case_name(failure))}** ({failure.kind} in {_code(suite)})"
    loc = where(failure)
    if loc:
        head += f" at {_code(loc)}"
    lines = [head]
    if failure.message:
        lines.append(f"   {_code(failure.message)}")
    if failure.details and failure.details.strip() != failure.message.strip():
        details = failure.details
        if len(details) > _DETAILS_LIMIT:
            details = "[...]\n" + details[-_DETAILS_LIMIT:]
        block = _fenced(details).replace("\n", "\n   ")
        lines.append(f"   <details><summary>Details</summary>\n\n   {block}\n\n   </details>")
    return "\n".join(lines) + "\n"


def _more(count: int) -> str:
    return f"\n{count} more failure{'s' if count != 1 else ''} not shown.\n"


def _with_failures(
    head: str, failures: Sequence[tuple[str | None, Failure]], tail: str, limit: int
) -> str:
    """``head`` + as many failures as fit in ``limit`` + a "N more" note + ``tail``."""
    if not failures:
        return _clip(head + tail, limit)
    out = [head, f"\n### Failures ({len(failures)})\n\n"]
    size = sum(len(s) for s in out) + len(tail)
    for i, (run_suite, failure) in enumerate(failures):
        item = failure_markdown(failure, i + 1, run_suite=run_suite)
        later = len(failures) - i - 1
        # Adding this item must leave room for the note about every later one.
        if size + len(item) + (len(_more(later)) if later else 0) > limit:
            out.append(_more(len(failures) - i))
            break
        out.append(item)
        size += len(item)
    return _clip("".join(out) + tail, limit)


def _clip(text: str, limit: int) -> str:
    """Last resort when even the fixed parts exceed the limit."""
    if len(text) <= limit:
        return text
    note = "\n\n(summary truncated to GitHub's size limit)\n"
    return text[: max(limit - len(note), 0)] + note[:limit]


def results_markdown(
    results: TestResults, *, title: str = "Test results", limit: int = STEP_SUMMARY_LIMIT // 4
) -> str:
    """Markdown for ``immu report``: a heading, the totals line and the failures.

    The default ``limit`` (characters) keeps even 4-byte UTF-8 text within a step summary.
    """
    head = f"## {_inline(title)}\n\n{totals_line(results.totals)}\n"
    return _with_failures(head, [(None, f) for f in results.failures], "", limit)


def _suite_row(name: str, status: str, totals: Totals, duration_s: float) -> str:
    cells = [
        name,
        status,
        totals.tests,
        totals.passed,
        totals.failed,
        totals.errors,
        totals.skipped,
        _seconds(duration_s),
    ]
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _image_lines(run: RunResult) -> str:
    if not run.image_ref:
        return "Image: none (the run stopped before an image was built)\n"
    lines = [f"Image: `{run.image_ref}`"]
    if run.digest is None:
        lines[0] += " (local image ID: not pushed yet)"
    if run.tested_is_shipped is True:
        lines.append("Tested image is the shipped image: yes, same digest.")
    elif run.tested_is_shipped is False:
        lines.append("Tested image is the shipped image: NO, the digests differ.")
    return "  \n".join(lines) + "\n"


def suites_table(run: RunResult) -> str:
    """The per-suite table with a total row."""
    rows = [
        "| Suite | Status | Tests | Passed | Failed | Errors | Skipped | Duration |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in run.suites:
        rows.append(
            _suite_row(_inline(s.name), _STATUS_WORDS[s.status], s.results.totals, s.duration_s)
        )
    if len(run.suites) > 1:
        total = run.totals
        rows.append(
            _suite_row(
                "**Total**",
                "passed" if run.ok else "failed",
                total,
                sum(s.duration_s for s in run.suites),
            )
        )
    return "\n".join(rows) + "\n"


def run_markdown(run: RunResult, *, sections: Sequence[str] = (), limit: int = 65_000) -> str:
    """The check-run / step summary of a run, at most ``limit`` characters.

    Image reference, tested-is-shipped line, suite table, totals, failures (trimmed
    with "N more failures not shown" to fit), then each of ``sections`` (e.g. promotion).
    """
    verdict = "tests passed" if run.ok else "tests failed"
    if run.failure is not None:
        verdict = run.failure.headline
    # Wall time of the suites, not the sum of test case times (which misses setup and crashes).
    totals = replace(run.totals, duration_s=sum(s.duration_s for s in run.suites))
    line = totals_line(totals)
    if run.failure is not None and not run.suites:
        line = "No suite ran: the run stopped before the tests."
    elif not run.ok and totals.ok and run.suites:  # a suite failed without a failing case
        line += "  \nA suite failed without a failing test case: see its status below."
    head = (
        f"## immu: {verdict}\n\n{failure_section(run)}{_image_lines(run)}\n"
        f"{line}\n\n{suites_table(run) if run.suites else ''}"
    )
    tail = "".join("\n" + s.rstrip("\n") + "\n" for s in sections if s.strip())
    failures = [(s.name, f) for s in run.suites for f in s.results.failures]
    return _with_failures(head, failures, tail, limit)


def failure_section(run: RunResult) -> str:
    """Why the run stopped (stage and message, log tail fenced), or nothing."""
    if run.failure is None:
        return ""
    first, _, rest = run.failure.message.partition("\n")
    out = f"**{run.failure.headline.capitalize()}** ({run.failure.stage}): {_code(first, 500)}\n\n"
    return out + (_fenced(rest) + "\n" if rest.strip() else "")


def short_id(ref: str) -> str:
    """``sha256:0123456789ab`` from a digest or image ID (12 hex digits, like docker)."""
    algo, sep, hexa = ref.partition(":")
    return f"{algo}:{hexa[:12]}" if sep else ref[:19]


def status_description(run: RunResult) -> str:
    """A commit-status description (<= 140 chars): verdict, counts, short digest or ID."""
    t = run.totals
    counts = f"{t.passed}/{t.tests} passed"
    for n, word in ((t.failed, "failed"), (t.errors, "errors"), (t.skipped, "skipped")):
        if n:
            counts += f", {n} {word}"
    verdict = "Passed" if run.ok else "Failed"
    if not run.ok and t.ok:  # a suite crashed or timed out without failing cases
        verdict = "Failed (suite error)" if t.tests else "Failed (no test case ran)"
    image = short_id(run.digest or run.image_id) if (run.digest or run.image_id) else ""
    if run.failure is not None:
        first = run.failure.message.splitlines()[0] if run.failure.message else ""
        text = f"{run.failure.headline.capitalize()}: {first}"
        return text[:STATUS_DESCRIPTION_LIMIT - 3] + "..." \
            if len(text) > STATUS_DESCRIPTION_LIMIT else text
    text = f"{verdict}: {counts} on {image}"
    return text[:STATUS_DESCRIPTION_LIMIT]
