"""``immu verify``: exit 0 only when passing test results for that exact digest are stored
in the registry (a deployment script's gate)."""

from __future__ import annotations

import argparse
from typing import Any

from immu_action.commands._common import add_json_argument
from immu_action.commands._registry import add_registry_arguments
from immu_action.errors import ExitCode
from immu_action.output import emit_json, say


def register(sub: Any) -> None:
    """Add the ``verify`` subcommand."""
    p = sub.add_parser(
        "verify", help="exit 0 only if passing test results for the digest are in the registry",
        description="Read the test-result statements attached to the digest (referrers API, "
        "or the referrers tag schema) and pass when one run, with every shard it was split "
        "into, passed. Exit 0: passing results; 1: only failing or incomplete results; "
        "3: no results for this digest.")
    p.add_argument("target", metavar="REPOSITORY@DIGEST",
                   help="the image to check (REPOSITORY:TAG is resolved to its digest)")
    p.add_argument("--run", metavar="RUN_ID",
                   help="only the results of this run (a GitHub Actions run ID)")
    add_registry_arguments(p, provenance=False)
    add_json_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Check the stored results; print each run's verdict."""
    from immu_action.adapters.registry.promotion import Registries
    from immu_action.adapters.registry.results import check_digest

    checked = check_digest(args.target, run=args.run,
                           registries=Registries(insecure=args.insecure_registry))
    if args.json:
        emit_json(checked.as_dict())
    else:
        say(f"{checked.reference}: " + (
            f"passing results from run {checked.passing.run}" if checked.passing
            else "no passing results" if checked.runs else "no test results stored"))
        for v in checked.runs:
            say(f"  run {v.run}: {'passed' if v.passed else v.problem}"
                + "".join(f"\n    {r.shard or '-'} {r.result} {r.time or ''} {r.url or ''}"
                          for r in v.results))
        for note in checked.notes:
            say(f"  ignored: {note}")
    if checked.passing:
        return int(ExitCode.OK)
    return int(ExitCode.TESTS_FAILED if checked.runs else ExitCode.POLICY_REFUSED)
