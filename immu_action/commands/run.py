"""``immu run``: build, push by digest (when asked), test that exact image, promote, report."""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import replace
from typing import Any

from immu_action.commands import _common as common
from immu_action.commands._common import add_json_argument, add_spec_argument
from immu_action.core.policy import SWITCHES, Switch
from immu_action.core.sharding import parse_shard
from immu_action.core.summary import CHECK_RUN_NAME
from immu_action.core.timings import timings_line
from immu_action.errors import BadInput, ExitCode, ImmuError
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
    shard = p.add_argument_group(
        "sharded runs", "A run split over matrix jobs: a build job (--mode build) pushes, N "
        "jobs test its digest (--image, --shard I --shards N), a last job gathers their "
        "results from the registry, reports once and promotes (--mode gather).")
    shard.add_argument("--mode", choices=MODES, default=None,
                       help="run: the whole flow; build: build and push only; gather: "
                       "the shards' stored results, one report, promotion (default "
                       "$IMMU_MODE or run)")
    shard.add_argument("--image", metavar="REPOSITORY@DIGEST", default=None,
                       help="test (or gather) this pushed digest instead of building "
                       "(default $IMMU_IMAGE)")
    shard.add_argument("--shard", metavar="I", default=None,
                       help="this job's shard, 1 to --shards (default $IMMU_SHARD)")
    shard.add_argument("--shards", metavar="N", default=None,
                       help="how many shards the run has (default $IMMU_SHARDS)")
    shard.add_argument("--run", dest="gather_run", metavar="RUN_ID", default=None,
                       help="gather the shards of this run (default: $GITHUB_RUN_ID)")
    add_json_argument(p)
    p.set_defaults(handler=run)


MODES = ("run", "build", "gather")


def _partial_exit(result: Any, mode: str, policy: common.FailOn) -> int:
    """A build job passes when it pushed; a shard by its own suites (it may have none)."""
    if mode == "build" or result.failure is not None:
        return int(result.failure.exit_code) if result.failure else 0
    passed = all(s.status.value == "passed" for s in result.suites)
    return 0 if passed else common.exit_code(result, policy)


def _ask_ahead(args: argparse.Namespace) -> None:
    """What launching the build needs of git and of the engine (its image store), asked
    now: the answers arrive while the pipeline and the spec's checks are imported."""
    from immu_action.adapters import git
    from immu_action.adapters.docker import probe

    if _mode(args) == "gather" or _image(args):
        return  # nothing is built
    git.ask_facts_ahead(common.spec_path(args).parent)
    # Bad input here (IMMU_PUSH, a docker context) is said, with its fix, where it is used.
    with contextlib.suppress(ImmuError):
        if _switch(args.push, "IMMU_PUSH") != "false":  # the cache mode depends on the store
            probe.ask_info_ahead(probe.engine_host())


def _mode(args: argparse.Namespace) -> str:
    return str(args.mode or common.env_default("IMMU_MODE", "run"))


def _image(args: argparse.Namespace) -> str | None:
    """The pushed digest to test instead of building (``--image``, ``$IMMU_IMAGE``)."""
    return args.image or common.env_default("IMMU_IMAGE", "") or None


def _switch(value: str | None, env: str) -> Switch:
    chosen = value or common.env_default(env, "auto")
    if chosen not in SWITCHES:
        raise BadInput(f"{env}={chosen!r} is not valid (one of: {', '.join(SWITCHES)})")
    return chosen


def run(args: argparse.Namespace) -> int:
    """Run the whole flow; the outcome goes to stderr (and stdout with --json)."""
    from immu_action.adapters import git
    from immu_action.adapters.docker import probe

    _ask_ahead(args)
    try:
        return _run(args)
    finally:  # an answer this run did not take is not for the next one (in one process)
        git.forget_asked()
        probe.forget_asked()


def _run(args: argparse.Namespace) -> int:
    from immu_action import run as pipeline

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
    mode = _mode(args)
    if mode not in MODES:
        raise BadInput(f"IMMU_MODE={mode!r} is not valid (one of: {', '.join(MODES)})")
    shard = None if mode == "gather" else parse_shard(
        args.shard or common.env_default("IMMU_SHARD", ""),
        args.shards or common.env_default("IMMU_SHARDS", ""))
    image = _image(args)
    if mode == "gather":
        total = args.shards or common.env_default("IMMU_SHARDS", "")
        if not str(total).isdigit() or int(total) < 1 or image is None:
            raise BadInput("--mode gather needs the tested digest (--image or IMMU_IMAGE) and "
                           "the number of shards (--shards or IMMU_SHARDS, 1 or more)")
        opts = replace(opts, gather=int(total), image=image, gather_run=args.gather_run)
    else:
        opts = replace(opts, shard=shard, image=image, tests=mode != "build")
    ctx = pipeline.context_from_env()
    outcome = pipeline.run(spec, opts, ctx)
    if mode == "build":
        say(f"built and pushed {outcome.run.image_ref}")
    else:
        common.print_outcome(outcome.run)
    if outcome.timings:
        say(timings_line(outcome.timings))
    if args.json:
        built = outcome.build
        emit_json({**outcome.run.as_dict(), "tag": built.tag if built else None,
                   "staging_tag": outcome.staging_tag,
                   "labels": built.labels if built else None, "promotion": outcome.promotion,
                   "promotion_refused": outcome.promotion_refused, "report": outcome.report,
                   "timings": outcome.timings})
    if mode == "build" or (shard is not None and mode == "run"):
        return _partial_exit(outcome.run, mode, policy)
    code = common.exit_code(outcome.run, policy)
    if code == 0 and opts.promote == "true" and outcome.promotion_refused:
        say(f"immu: error: promotion refused: {outcome.promotion_refused}")
        return int(ExitCode.POLICY_REFUSED)
    return code
