"""Pure logic: no Docker, GitHub, HTTP, subprocess or environment access (a test enforces it)."""
