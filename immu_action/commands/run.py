"""``immu run``: build, push by digest (when asked), test that exact image, promote, report."""

from __future__ import annotations

import argparse
from typing import Any

from immu_action.commands import _common as common
from immu_action.commands._common import add_json_argument, add_spec_argument
from immu_action.core.policy import SWITCHES, Switch
from immu_action.core.summary import CHECK_RUN_NAME
from immu_action.errors import BadInput, ExitCode
from immu_action.output import emit_json, say


def register(sub: Any) -> None:
    """Add the ``run`` subcommand."""
    p = sub.add_parser("run", help="build, (push,) test that exact image, (promote, report)")
    add_spec_argument(p)
    common.add_suite_argument(p)
    common.add_fail_on_argument(p)
    common.add_parallel_argument(p)
    push = p.add_mutually_exclusive_group()
    push.add_argument("--push", dest="push", action="store_const", const="true",
                      help="push the image under its staging tag and test it by digest")
    push.add_argument("--no-push", dest="push", action="store_const", const="false",
                      help="push nothing; test the local image ID")
    p.add_argument("--promote", choices=SWITCHES, default=None,
                   help="auto: promote when the gate allows (GitHub Actions); true: a refusal "
                   "fails the run (exit 3); false: never (default $IMMU_PROMOTE or auto)")
    p.add_argument("--check-name", default=None, metavar="NAME",
                   help="name of the check run reporting the results (default $IMMU_CHECK_NAME "
                   "or 'immu-action: tested image'; never a job's name: jobs are check runs)")
    p.add_argument("--insecure-registry", action="store_true",
                   help="allow plain HTTP to a registry that is not on loopback")
    add_json_argument(p)
    p.set_defaults(handler=run)


def _switch(value: str | None, env: str) -> Switch:
    chosen = value or common.env_default(env, "auto")
    if chosen not in SWITCHES:
        raise BadInput(f"{env}={chosen!r} is not valid (one of: {', '.join(SWITCHES)})")
    return chosen


def run(args: argparse.Namespace) -> int:
    """Run the whole flow; the outcome goes to stderr (and stdout with --json)."""
    from immu_action import run as pipeline
    from immu_action.adapters.docker import engine

    spec = common.spec_from(args)
    policy = common.fail_on(args)
    suites = common.suites_from(args)
    opts = pipeline.RunOptions(
        suites=suites, results_root=common.results_root(args, spec),
        push=_switch(args.push, "IMMU_PUSH"), promote=_switch(args.promote, "IMMU_PROMOTE"),
        insecure_registry=args.insecure_registry,
        check_name=args.check_name or common.env_default("IMMU_CHECK_NAME", CHECK_RUN_NAME),
        parallel=common.parallel_from(args),
    )
    ctx = pipeline.context_from_env()
    outcome = pipeline.run(engine.connect(), spec, opts, ctx)
    common.print_outcome(outcome.run)
    if args.json:
        emit_json({**outcome.run.as_dict(), "tag": outcome.build.tag,
                   "staging_tag": outcome.staging_tag,
                   "labels": outcome.build.labels, "promotion": outcome.promotion,
                   "promotion_refused": outcome.promotion_refused, "report": outcome.report})
    code = common.exit_code(outcome.run, policy)
    if code == 0 and opts.promote == "true" and outcome.promotion_refused:
        say(f"immu: error: promotion refused: {outcome.promotion_refused}")
        return int(ExitCode.POLICY_REFUSED)
    return code
