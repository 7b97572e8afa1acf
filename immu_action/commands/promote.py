"""``immu promote``: point tags at a tested digest by manifest copy, with an audit record."""

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
    """Add the ``promote`` subcommand."""
    p = sub.add_parser("promote", help="copy a tested digest's manifest to tags (no rebuild)")
    p.add_argument("source", metavar="REPOSITORY@DIGEST")
    p.add_argument("tags", nargs="+", metavar="TAG",
                   help="TAG, REPO:TAG or HOST/REPO:TAG (another repository or registry)")
    add_registry_arguments(p, provenance=True)
    add_json_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Promote; exit 3 when an immutable tag would move."""
    from immu_action.adapters.registry.promotion import Registries, promote

    result = promote(args.source, args.tags, mutable=mutable_from(args),
                     provenance=provenance_from(args),
                     registries=Registries(insecure=args.insecure_registry))
    print_result(result, args.json)
    return 0
