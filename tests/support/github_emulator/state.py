"""What the emulated repository holds: branches, statuses, check runs, comments, releases..."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Branch:
    """A branch: its head, its history (oldest first, head last) and its protection."""

    name: str
    history: list[str]
    protected: bool = False
    rules: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sha(self) -> str:
        """The head commit."""
        return self.history[-1]


@dataclass
class RepoState:
    """Mutable store behind the emulator; tests read it to assert what was written."""

    owner: str
    name: str
    branches: dict[str, Branch] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    check_runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    annotations: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    comment_issue: dict[int, int] = field(default_factory=dict)
    releases: dict[int, dict[str, Any]] = field(default_factory=dict)
    assets: dict[int, dict[str, Any]] = field(default_factory=dict)
    asset_bytes: dict[int, bytes] = field(default_factory=dict)
    asset_release: dict[int, int] = field(default_factory=dict)
    deployments: dict[int, dict[str, Any]] = field(default_factory=dict)
    deployment_statuses: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    jobs: dict[int, str] = field(default_factory=dict)  # check-run id -> job name
    suites: dict[str, int] = field(default_factory=dict)  # head sha -> the Actions check suite
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def full_name(self) -> str:
        """``owner/name``."""
        return f"{self.owner}/{self.name}"

    def next_id(self) -> int:
        """A fresh object id, unique across kinds (GitHub ids are global too)."""
        return next(self._ids)

    def add_branch(self, name: str, *shas: str, protected: bool = False,
                   rules: list[dict[str, Any]] | None = None) -> Branch:
        """Create (or replace) a branch whose history is ``shas`` (head last)."""
        branch = Branch(name=name, history=list(shas), protected=protected, rules=rules or [])
        self.branches[name] = branch
        return branch

    def resolve(self, ref: str) -> tuple[str, list[str]] | None:
        """A branch name or known sha -> (sha, its ancestry, oldest first)."""
        if ref in self.branches:
            branch = self.branches[ref]
            return branch.sha, branch.history
        for branch in self.branches.values():
            if ref in branch.history:
                return ref, branch.history[: branch.history.index(ref) + 1]
        return None

    def statuses_for(self, sha: str) -> dict[str, str]:
        """Latest state per context for ``sha``."""
        latest: dict[str, str] = {}
        for status in self.statuses:
            if status["sha"] == sha:
                latest[status["context"]] = status["state"]
        return latest
