"""``immu test``: run the suites in fresh containers of one exact image ID."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from immu_action.commands import _common as common
from immu_action.commands._common import add_json_argument, add_spec_argument
from immu_action.errors import BadInput
from immu_action.output import emit_json

if TYPE_CHECKING:
    from immu_action.spec import Spec


def register(sub: Any) -> None:
    """Add the ``test`` subcommand."""
    p = sub.add_parser("test", help="run the test suites inside disposable containers")
    add_spec_argument(p)
    p.add_argument("--image", metavar="ID",
                   help="image to test (ID, or a reference resolved to its ID once; "
                   "default: the image `immu build` made for this commit)")
    common.add_suite_argument(p)
    common.add_fail_on_argument(p)
    common.add_parallel_argument(p)
    add_json_argument(p)
    p.set_defaults(handler=run)


def image_for(spec: Spec, image: str | None) -> str:
    """The reference to resolve: ``--image`` or the build's tag for the current commit."""
    if image:
        return image
    from immu_action.adapters.git import head_sha
    from immu_action.stages.build import local_tag

    tag = local_tag(spec, head_sha(spec.path.parent))
    if not tag:
        raise BadInput("no --image given and no git commit to find the built image by; "
                       "pass --image ID (as printed by `immu build`)")
    return tag


def run(args: argparse.Namespace) -> int:
    """Resolve the image to its ID, run the suites, print (or --json) the outcome."""
    from immu_action.adapters.docker import engine
    from immu_action.stages.test import run_suites

    spec = common.spec_from(args)
    policy = common.fail_on(args)
    client = engine.connect()
    image_id = engine.image_config_digest(client, image_for(spec, args.image))
    result = run_suites(
        client, spec, image_id=image_id, suite_names=common.suites_from(args),
        results_root=common.results_root(args, spec), parallel=common.parallel_from(args),
    )
    common.print_outcome(result)
    if args.json:
        emit_json(result.as_dict())
    return common.exit_code(result, policy)
