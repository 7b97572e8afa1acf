"""``immu gc``: remove containers, networks and volumes left by runs that were killed."""

from __future__ import annotations

import argparse
from typing import Any

from immu_action.commands._common import add_json_argument
from immu_action.output import emit_json, say


def register(sub: Any) -> None:
    """Add the ``gc`` subcommand."""
    p = sub.add_parser("gc", help="remove leftovers of earlier runs that were SIGKILLed")
    p.add_argument("--all", action="store_true",
                   help="also remove resources of runs that still look alive")
    add_json_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Remove what dead runs left; report what was removed."""
    from immu_action.adapters.docker import engine
    from immu_action.adapters.docker.sandbox import collect_garbage

    removed = collect_garbage(engine.connect(), everything=args.all)
    if args.json:
        emit_json({"removed": removed})
    else:
        total = sum(len(v) for v in removed.values())
        say(f"removed {total} leftover resource(s)" + "".join(
            f"\n  {kind}: {', '.join(names)}" for kind, names in removed.items() if names))
    return 0
