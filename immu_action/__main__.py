"""`python -m immu_action` runs the `immu` CLI."""

from immu_action.cli import main

raise SystemExit(main())
