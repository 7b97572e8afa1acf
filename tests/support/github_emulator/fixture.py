"""Pytest fixtures (load with ``pytest_plugins``): a started emulator whose OpenAPI
violations fail the test, and the files of a pretend Actions step."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.github_emulator.helpers import OLD, SHA
from tests.support.github_emulator.server import GitHubEmulator


@pytest.fixture
def emulator() -> Iterator[GitHubEmulator]:
    """A running emulator with ``main`` (protected, head SHA) and ``dev`` (unprotected)."""
    emu = GitHubEmulator().start()
    emu.state.add_branch("main", OLD, SHA, protected=True)
    emu.state.add_branch("dev", OLD, SHA, "b" * 40)
    try:
        yield emu
    finally:
        emu.stop()
    assert emu.violations == [], "requests/responses outside GitHub's OpenAPI description"


@pytest.fixture
def actions_env(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``GITHUB_OUTPUT``/``GITHUB_STEP_SUMMARY`` files of a pretend Actions step."""
    paths = {"output": tmp_path / "output", "summary": tmp_path / "summary.md"}
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(paths["output"]))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(paths["summary"]))
    return paths
