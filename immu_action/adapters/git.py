"""Git facts for OCI labels, from the CI environment first and ``git`` second."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from immu_action.core.labels import GitFacts

GIT_TIMEOUT_S = 10


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def head_sha(cwd: Path, env: Mapping[str, str] | None = None) -> str | None:
    """The commit checked out at ``cwd`` (else ``GITHUB_SHA``; None where unknown)."""
    env = os.environ if env is None else env
    return _git(cwd, "rev-parse", "HEAD") or env.get("GITHUB_SHA")


def git_facts(cwd: Path, env: Mapping[str, str] | None = None) -> GitFacts:
    """Commit, remote, version and dirtiness of the checkout at ``cwd`` (None where unknown)."""
    env = os.environ if env is None else env
    sha = head_sha(cwd, env)
    remote = None
    if env.get("GITHUB_SERVER_URL") and env.get("GITHUB_REPOSITORY"):
        remote = f"{env['GITHUB_SERVER_URL']}/{env['GITHUB_REPOSITORY']}"
    remote = remote or _git(cwd, "remote", "get-url", "origin")
    version = None
    if env.get("GITHUB_REF_TYPE") == "tag":
        version = env.get("GITHUB_REF_NAME")
    version = version or _git(cwd, "describe", "--tags", "--exact-match", "HEAD")
    status = _git(cwd, "status", "--porcelain", "--untracked-files=no")
    when = _git(cwd, "log", "-1", "--format=%cI", "HEAD")
    return GitFacts(
        sha=sha,
        remote_url=remote,
        version=version,
        dirty=bool(status),
        commit_time=datetime.fromisoformat(when) if when else None,
    )
