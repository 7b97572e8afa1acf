"""``immu build``: build the spec's image with OCI labels from git; print its ID."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from immu_action import output
from immu_action.commands._common import add_json_argument, add_spec_argument, spec_from
from immu_action.output import emit_json


def register(sub: Any) -> None:
    """Add the ``build`` subcommand."""
    p = sub.add_parser("build", help="build the image from immu.yml and print its ID")
    add_spec_argument(p)
    add_json_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Build and print the image ID (stdout), the build log going to stderr."""
    from immu_action.adapters.docker import engine
    from immu_action.stages.build import build

    spec = spec_from(args)
    client = engine.connect()
    built = build(client, spec, log=output.log_to_stderr)
    if args.json:
        emit_json({"image_id": built.image_id, "tag": built.tag, "labels": built.labels,
                   "repository": spec.image.repository})
    else:
        sys.stdout.write(built.image_id + "\n")
    return 0
