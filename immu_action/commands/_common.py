"""Pieces shared by the build/test/run commands: spec, engine, options, outcome printing."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from immu_action.core.results import RunResult, SuiteStatus
from immu_action.errors import BadInput, ExitCode
from immu_action.output import say, untrusted_output

if TYPE_CHECKING:
    from immu_action.spec import Spec

FailOn = Literal["failures", "errors", "nothing"]
FAIL_ON: tuple[FailOn, ...] = ("failures", "errors", "nothing")


def add_spec_argument(parser: argparse.ArgumentParser) -> None:
    """``-f/--file``: the spec path shared by every command that reads one."""
    parser.add_argument(
        "-f", "--file", default="immu.yml", metavar="PATH", help="spec file (default: immu.yml)"
    )


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    """``--json``: one machine-readable JSON object on stdout."""
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout"
    )


def env_default(name: str, fallback: str) -> str:
    """An option's default from the environment (how the action passes its inputs)."""
    value = os.environ.get(name, "").strip()
    return value or fallback


def add_suite_argument(parser: argparse.ArgumentParser) -> None:
    """``--suite NAME`` (repeatable); ``IMMU_SUITES`` ("all" or names) is the default."""
    parser.add_argument(
        "--suite", action="append", dest="suites", metavar="NAME",
        help="run only this suite (repeatable; default: all, or $IMMU_SUITES)",
    )
    parser.add_argument(
        "--results-dir", metavar="DIR",
        help="where JUnit results are copied (default: .immu/results next to the spec)",
    )


def add_parallel_argument(parser: argparse.ArgumentParser) -> None:
    """``--parallel N``: how many suites run at once (``auto``: the runner's CPUs)."""
    parser.add_argument(
        "--parallel", metavar="N", default=None,
        help="suites run at once: a number, or auto for the CPU count (default "
        "$IMMU_PARALLEL or auto); 1 runs them one after the other, streaming their output",
    )


def parallel_from(args: argparse.Namespace) -> int | None:
    """The ``--parallel`` choice (None: auto), validated when it comes from the environment."""
    value = (args.parallel or env_default("IMMU_PARALLEL", "auto")).strip().lower()
    if value == "auto":
        return None
    if not value.isdigit() or int(value) < 1:
        source = "--parallel" if args.parallel else "IMMU_PARALLEL"
        raise BadInput(f"{source}={value!r} is not valid (a number of suites >= 1, or auto)")
    return int(value)


def add_fail_on_argument(parser: argparse.ArgumentParser) -> None:
    """``--fail-on``: which outcomes make the exit code 1."""
    parser.add_argument(
        "--fail-on", choices=FAIL_ON, default=None,
        help="exit 1 on test failures or errors (failures, the default), only on errors, "
        "or never (nothing); default $IMMU_FAIL_ON",
    )


def spec_from(args: argparse.Namespace) -> Spec:
    """Load the spec named by ``-f`` (or ``$IMMU_SPEC``)."""
    from immu_action.spec import load_spec  # lazily: `immu report` must start fast

    return load_spec(spec_path(args))


def spec_path(args: argparse.Namespace) -> Path:
    """The spec's path: ``-f``, else ``$IMMU_SPEC``, else ``immu.yml``."""
    return Path(args.file if args.file != "immu.yml" else env_default("IMMU_SPEC", "immu.yml"))


def suites_from(args: argparse.Namespace) -> list[str] | None:
    """Selected suite names, or None for all."""
    if args.suites:
        return list(args.suites)
    raw = env_default("IMMU_SUITES", "all")
    names = [n for n in raw.replace(",", " ").split() if n]
    return None if names in ([], ["all"]) else names


def results_root(args: argparse.Namespace, spec: Spec) -> Path:
    """The directory results are copied into."""
    if args.results_dir:
        return Path(args.results_dir).resolve()
    return spec.path.parent.resolve() / ".immu" / "results"


def fail_on(args: argparse.Namespace) -> FailOn:
    """The ``--fail-on`` policy, validated when it comes from the environment."""
    value = args.fail_on or env_default("IMMU_FAIL_ON", "failures")
    if value not in FAIL_ON:
        raise BadInput(f"IMMU_FAIL_ON={value!r} is not valid (one of: {', '.join(FAIL_ON)})")
    return value


def exit_code(run: RunResult, policy: FailOn) -> int:
    """0 or 1 from the run's outcome under the ``--fail-on`` policy."""
    if policy == "nothing":
        return int(ExitCode.OK)
    if policy == "errors":
        return int(ExitCode.TESTS_FAILED) if run.totals.errors else int(ExitCode.OK)
    return int(ExitCode.OK) if run.ok else int(ExitCode.TESTS_FAILED)


def print_outcome(run: RunResult, *, failures_shown: int = 20) -> None:
    """A short human summary on stderr: one line per suite, then the first failures
    (test names and messages come from the tests: fenced from the runner's commands)."""
    with untrusted_output():
        _print_outcome(run, failures_shown)


def _print_outcome(run: RunResult, failures_shown: int) -> None:
    say(f"image under test: {run.image_ref}")
    for s in run.suites:
        t = s.results.totals
        say(
            f"suite {s.name}: {s.status.value.replace('_', ' ')} - {t.tests} tests, "
            f"{t.passed} passed, {t.failed} failed, {t.errors} errors, {t.skipped} skipped "
            f"({s.duration_s:.1f}s)"
        )
    failures = [f for s in run.suites for f in s.results.failures]
    for f in failures[:failures_shown]:
        where = f" at {f.file}:{f.line}" if f.file and f.line else ""
        first = f.message.splitlines()[0] if f.message else ""
        say(f"  {f.kind.upper()} {f.suite} :: {f.name}{where}: {first}")
    if len(failures) > failures_shown:
        say(f"  ... and {len(failures) - failures_shown} more")
    t = run.totals
    verdict = "PASSED" if run.ok else "FAILED"
    if any(s.status is SuiteStatus.TIMED_OUT for s in run.suites):
        verdict += " (timed out)"
    say(f"{verdict}: {t.tests} tests, {t.passed} passed, {t.failed} failed, {t.errors} errors, "
        f"{t.skipped} skipped")
