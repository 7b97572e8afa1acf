"""``immu validate``: check ``immu.yml`` and list every problem at once, by line.

Exit 0 with a one-line summary, or exit 2 with one ``file:LINE: key: problem (valid)`` line
per problem on stderr; ``--json`` adds one object on stdout either way.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from immu_action.commands._common import add_json_argument, add_spec_argument
from immu_action.errors import ExitCode
from immu_action.output import emit_json, say


def register(sub: Any) -> None:
    """Add the ``validate`` subcommand."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "validate", help="check immu.yml and list every problem with its line",
        description="Check immu.yml: keys, types, names, durations, services, build "
                    "contexts and tag templates. Every problem is listed at once.",
    )
    add_spec_argument(parser)
    add_json_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Validate ``args.file``; 0 when valid, 2 with every problem otherwise."""
    file = str(args.file)
    from immu_action.spec import validate_file  # lazily: keeps every command's start-up short

    spec, problems = validate_file(Path(file))
    if spec is None:
        # Printed here rather than raised so that --json can carry the structured problems.
        for problem in problems:
            say(problem.render(file))
        if args.json:
            emit_json({"valid": False, "file": file,
                       "problems": [problem.as_json() for problem in problems]})
        return int(ExitCode.BAD_INPUT)
    suites, services = list(spec.tests), list(spec.services)
    say(f"{file}: valid: {_count(suites, 'suite')}, {_count(services, 'service')}")
    if args.json:
        emit_json({"valid": True, "file": file, "suites": suites, "services": services})
    return int(ExitCode.OK)


def _count(names: list[str], noun: str) -> str:
    return f"{len(names)} {noun}{'' if len(names) == 1 else 's'}"
