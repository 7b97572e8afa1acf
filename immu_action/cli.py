"""The ``immu`` command line: argparse, one error handler, ``--json``, exit codes.

Exit codes: 0 ok; 1 tests failed; 2 bad input; 3 promotion refused by policy;
4 an external system failed after retries; 130 cancelled. Human messages go to
stderr; ``--json`` prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from immu_action import __version__
from immu_action.core.timings import timings_line
from immu_action.errors import ExitCode, ImmuError, SpecError
from immu_action.output import emit_json, say, untrusted_output

# Subcommand modules under immu_action.commands, in the order `--help` lists them.
COMMANDS = (
    "validate", "schema", "build", "test", "run", "report", "promote", "rollback", "trace",
    "verify", "gc",
)

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors exit 2 with one clear line (argparse's own code)."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, with every subcommand registered by its module; ``only``: that one
    subcommand alone (its module is all a run imports: the others cost ~10 ms)."""
    parser = _Parser(
        prog="immu",
        description="Build once, test the very image that ships, promote that digest.",
    )
    parser.add_argument("--version", action="version", version=f"immu {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS if only is None else (only,):
        module = importlib.import_module(f"immu_action.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    # `immu run ...` builds the run parser alone; `immu --help`, `immu -h run` or a typo
    # gets them all.
    parser = build_parser(words[0] if words and words[0] in COMMANDS else None)
    args = parser.parse_args(words)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ImmuError as e:
        # Spec problems are already one `file:line: key: message` line each. A message may
        # quote user output (a build log's tail): fenced from the runner's commands.
        with untrusted_output():
            say(str(e) if isinstance(e, SpecError) else f"immu: error: {e}")
        if e.timings:
            say(timings_line(e.timings))
        if getattr(args, "json", False):
            emit_json({"error": {"type": type(e).__name__, "message": str(e)},
                       "exit_code": int(e.exit_code),
                       **({"timings": e.timings} if e.timings else {})})
        return int(e.exit_code)
    except KeyboardInterrupt:
        say("immu: cancelled")
        return int(ExitCode.CANCELLED)
    except BrokenPipeError:
        return int(ExitCode.OK)
    except Exception as e:  # a bug: one line and exit 4, never 1 (which means tests failed)
        if os.environ.get("IMMU_DEBUG"):
            traceback.print_exc()
        say(f"immu: internal error: {type(e).__name__}: {e} (set IMMU_DEBUG=1 for the "
            "traceback; please report it)")
        if getattr(args, "json", False):
            emit_json({"error": {"type": "InternalError", "message": str(e)},
                       "exit_code": int(ExitCode.EXTERNAL_FAILURE)})
        return int(ExitCode.EXTERNAL_FAILURE)



def entry() -> int:
    """The console script and ``python -m immu_action``: ``main()`` for a process that ends
    right after it. The interpreter's last garbage collection would walk every object of
    docker-py, requests and the stages (~30 ms of every run, measured); frozen, they are
    left to the process's end. (Finalizers and atexit still run: temporary directories go.)"""
    code = main()
    gc.freeze()
    return code
