"""``immu report [--json] PATH...``: summarise JUnit XML files (or directories of them).

Prints the markdown summary on stdout (``--json``: one object with totals, failures and
the files read). Exit 0 when nothing failed, 1 when a test failed or errored, 2 when a
file is missing or is not (safe) JUnit XML.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from immu_action.commands._common import add_json_argument
from immu_action.core.junit import junit_files, parse_junit
from immu_action.core.results import TestResults
from immu_action.core.summary import results_markdown
from immu_action.errors import ExitCode
from immu_action.output import emit_json


def register(sub: Any) -> None:
    """Add the ``report`` subcommand to the CLI's subparsers."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "report",
        help="summarise JUnit XML results",
        description="Summarise JUnit XML files (directories are searched for *.xml).",
    )
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="JUnit XML file or directory"
    )
    add_json_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Parse every file, print the summary, and map the outcome to an exit code."""
    files = junit_files(args.paths)
    results = TestResults.merge(parse_junit(f) for f in files)
    if args.json:
        emit_json({**results.as_dict(), "files": [str(f) for f in files]})
    else:
        sys.stdout.write(results_markdown(results))
        sys.stdout.flush()
    return int(ExitCode.OK if results.totals.ok else ExitCode.TESTS_FAILED)
