"""``immu trace``: the digest, commit, tests and run behind a tag, and its history."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from immu_action.commands._common import add_json_argument
from immu_action.commands._registry import add_registry_arguments
from immu_action.output import emit_json, say

if TYPE_CHECKING:
    from immu_action.adapters.registry.history import TraceResult


def register(sub: Any) -> None:
    """Add the ``trace`` subcommand."""
    p = sub.add_parser("trace", help="what is behind a tag, and what was before")
    p.add_argument("target", metavar="REPOSITORY:TAG")
    p.add_argument("--limit", type=int, default=100, metavar="N",
                   help="read at most N audit records (default 100)")
    add_registry_arguments(p, provenance=False)
    add_json_argument(p)
    p.set_defaults(handler=run)


def _human(result: TraceResult) -> None:
    """Readable summary on stderr."""
    say(f"{result.reference} -> {result.digest or '(no such tag)'}")
    data = result.as_dict()
    if result.records and not result.in_sync:
        say("  warning: the tag was moved outside immu; its newest record names "
            f"{result.records[0][1].digest}")
    if result.provenance is not None:
        tests = data["tests"] or {}
        say(f"  commit {data['commit'] or '-'}  run {data['run_url'] or '-'}  tests "
            + (f"{tests.get('passed', '?')}/{tests.get('tests', '?')} passed" if tests else "-"))
    for _, r in result.records:
        say(f"  {r.time}  {r.action:<8} {r.digest}  commit {r.commit or '-'}"
            f"  (was {r.previous_digest or 'unset'})")
    for digest, verdicts in result.results.items():
        say(f"  results stored with {digest}: " + ("none" if not verdicts else "; ".join(
            f"run {v.run} {'passed' if v.passed else v.problem}" for v in verdicts)))
    if not result.records:
        say("  no audit records (never promoted by immu)")


def run(args: argparse.Namespace) -> int:
    """Print the trace."""
    from immu_action.adapters.registry.history import trace
    from immu_action.adapters.registry.promotion import Registries

    result = trace(args.target, limit=args.limit,
                   registries=Registries(insecure=args.insecure_registry))
    if args.json:
        emit_json(result.as_dict())
    else:
        _human(result)
    return 0
