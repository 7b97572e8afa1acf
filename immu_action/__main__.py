"""`python -m immu_action` runs the `immu` CLI."""

from immu_action.cli import entry

raise SystemExit(entry())
