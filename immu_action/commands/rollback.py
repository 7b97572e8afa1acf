"""``immu rollback``: re-point a mutable tag to an earlier promoted digest, recorded."""

from __future__ import annotations

import argparse
from typing import Any

from immu_action.commands._common import add_json_argument
from immu_action.commands._registry import (
    add_registry_arguments,
    mutable_from,
    print_result,
    provenance_from,
)


def register(sub: Any) -> None:
    """Add the ``rollback`` subcommand."""
    p = sub.add_parser("rollback", help="re-point a tag to an earlier promoted digest")
    p.add_argument("target", metavar="REPOSITORY:TAG")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--to", metavar="DIGEST", help="an earlier digest of this tag")
    which.add_argument("--steps", type=int, default=1, metavar="N",
                       help="go back N promoted digests (default 1)")
    add_registry_arguments(p, provenance=True)
    add_json_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Roll back; exit 3 for an immutable tag, 2 when there is nothing to roll back to."""
    from immu_action.adapters.registry.history import rollback
    from immu_action.adapters.registry.promotion import Registries

    result = rollback(args.target, to=args.to, steps=args.steps, mutable=mutable_from(args),
                      provenance=provenance_from(args),
                      registries=Registries(insecure=args.insecure_registry))
    print_result(result, args.json)
    return 0
