"""``immu run``: build, then test that exact image (push, report, promote: later stages)."""

from __future__ import annotations

import argparse
from typing import Any

from immu_action import pipeline
from immu_action.adapters import engine
from immu_action.cli import add_json_argument, add_spec_argument, emit_json
from immu_action.commands import _common as common


def register(sub: Any) -> None:
    """Add the ``run`` subcommand."""
    p = sub.add_parser("run", help="build the image, then test that exact image")
    add_spec_argument(p)
    common.add_suite_argument(p)
    common.add_fail_on_argument(p)
    add_json_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Build then test; the outcome goes to stderr (and stdout with --json)."""
    spec = common.spec_from(args)
    policy = common.fail_on(args)
    suites = common.suites_from(args)
    pipeline.select_suites(spec, suites)  # bad suite names fail before a long build
    client = engine.connect()
    built = pipeline.build(client, spec, log=pipeline.log_to_stderr)
    result = pipeline.test(
        client, spec, image_id=built.image_id, suite_names=suites,
        results_root=common.results_root(args, spec),
    )
    common.print_outcome(result)
    if args.json:
        emit_json({**result.as_dict(), "tag": built.tag, "labels": built.labels})
    return common.exit_code(result, policy)
