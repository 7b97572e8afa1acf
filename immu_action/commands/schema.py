"""``immu schema``: print the JSON Schema of ``immu.yml`` for editors and other tools.

The schema ships as package data (``immu_action/spec/immu.schema.json``), generated from the
same description the validator uses (``spec_rules.json_schema``); a unit test keeps them equal.
Point an editor at it with ``# yaml-language-server: $schema=<path>`` in ``immu.yml``.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from typing import Any

from immu_action.errors import ImmuError

SCHEMA_RESOURCE = "spec/immu.schema.json"


def register(sub: Any) -> None:
    """Add the ``schema`` subcommand."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "schema", help="print the JSON Schema of immu.yml",
        description="Print the JSON Schema (draft 2020-12) of immu.yml on stdout.",
    )
    parser.set_defaults(handler=run)


def schema_text() -> str:
    """The shipped schema's text; an ``ImmuError`` if the installation lost it."""
    try:
        return (resources.files("immu_action") / SCHEMA_RESOURCE).read_text(encoding="utf-8")
    except OSError as e:
        raise ImmuError(f"{SCHEMA_RESOURCE} is missing from the installed package "
                        "(reinstall immu-action)") from e


def run(args: argparse.Namespace) -> int:
    """Write the schema to stdout."""
    sys.stdout.write(schema_text())
    sys.stdout.flush()
    return 0
