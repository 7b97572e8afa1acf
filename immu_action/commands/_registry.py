"""Arguments and output shared by ``promote``, ``rollback`` and ``trace`` (the registry
commands): registry options, the provenance of a move, mutable tags, the printed result."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from immu_action.errors import BadInput
from immu_action.output import emit_json, say

if TYPE_CHECKING:
    from immu_action.adapters.registry.promotion import PromotionResult, Provenance


def add_registry_arguments(p: argparse.ArgumentParser, *, provenance: bool) -> None:
    """Options shared by promote and rollback (and ``--insecure-registry`` for trace)."""
    p.add_argument("--insecure-registry", action="store_true",
                   help="allow plain HTTP to a non-loopback registry")
    if not provenance:
        return
    p.add_argument("--mutable", action="append", metavar="TAG",
                   help="a tag that may move (repeatable; default: latest)")
    p.add_argument("--commit", help="commit recorded in the audit trail (default $GITHUB_SHA)")
    p.add_argument("--run-url", help="CI run recorded in the audit trail (default: this run)")
    p.add_argument("--results-json", metavar="FILE", type=Path,
                   help="JSON with test totals (e.g. the --json output of immu test)")


def provenance_from(args: argparse.Namespace) -> Provenance:
    """Audit provenance from options, falling back to the GitHub Actions environment."""
    from immu_action.adapters.registry.promotion import Provenance

    env = os.environ
    run_url = args.run_url
    if run_url is None and env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        run_url = (f"{env.get('GITHUB_SERVER_URL', 'https://github.com')}/"
                   f"{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}")
    return Provenance(commit=args.commit or env.get("GITHUB_SHA"), run_url=run_url,
                      tests=_totals(args.results_json), actor=env.get("GITHUB_ACTOR"))


def _totals(path: Path | None) -> dict[str, Any] | None:
    """Totals from a results JSON (a totals object, or anything with a ``totals`` key)."""
    if path is None:
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BadInput(f"--results-json {path}: cannot read JSON ({e})") from e
    totals = doc.get("totals", doc) if isinstance(doc, dict) else None
    if not isinstance(totals, dict) or not isinstance(totals.get("tests"), int):
        raise BadInput(f"--results-json {path}: expected an object with 'tests' (or 'totals')")
    return totals


def mutable_from(args: argparse.Namespace) -> tuple[str, ...]:
    """``--mutable`` values, or the default (latest) when none is given."""
    from immu_action.adapters.registry.promotion import DEFAULT_MUTABLE

    return tuple(args.mutable) if args.mutable else DEFAULT_MUTABLE


def print_result(result: PromotionResult, as_json: bool) -> None:
    """Human lines on stderr, or the JSON object on stdout."""
    if as_json:
        emit_json(result.as_dict())
        return
    for t in result.tags:
        verb = ("already at" if not t.written
                else "promoted to" if result.action == "promote" else "rolled back to")
        was = f" (was {t.previous_digest})" if t.written and t.previous_digest else ""
        say(f"{t.reference}: {verb} {result.digest}{was}")
