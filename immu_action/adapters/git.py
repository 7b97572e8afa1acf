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
    """``git ARGS``'s output, stripped; None when it fails or prints nothing."""
    return _git_all(cwd, args)[0]


def head_sha(cwd: Path, env: Mapping[str, str] | None = None) -> str | None:
    """The commit checked out at ``cwd`` (else ``GITHUB_SHA``; None where unknown)."""
    env = os.environ if env is None else env
    return _git(cwd, "rev-parse", "HEAD") or env.get("GITHUB_SHA")


def _git_all(cwd: Path, *commands: tuple[str, ...]) -> list[str | None]:
    """``_git`` for each of ``commands``, run at once (git's start-up is most of each)."""
    return _outputs(_launch(cwd, commands))


_Procs = list["subprocess.Popen[str] | None"]


def _launch(cwd: Path, commands: tuple[tuple[str, ...], ...]) -> _Procs:
    procs: _Procs = []
    for args in commands:
        try:
            procs.append(subprocess.Popen(["git", *args], cwd=cwd, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True))
        except OSError:
            procs.append(None)
    return procs


def _outputs(procs: _Procs) -> list[str | None]:
    found: list[str | None] = []
    for proc in procs:
        if proc is None:
            found.append(None)
            continue
        try:
            out, _ = proc.communicate(timeout=GIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            found.append(None)
            continue
        found.append(out.strip() if proc.returncode == 0 and out.strip() else None)
    return found


_FACTS = (("rev-parse", "HEAD"), ("remote", "get-url", "origin"),
          ("describe", "--tags", "--exact-match", "HEAD"),
          ("status", "--porcelain", "--untracked-files=no"), ("log", "-1", "--format=%cI", "HEAD"))
_asked: dict[Path, _Procs] = {}


def ask_facts_ahead(cwd: Path) -> None:
    """Start the git commands of ``git_facts(cwd)`` now: that call then only collects their
    output (they run while the rest of immu is imported). Never collected, they just end."""
    _asked[cwd.resolve()] = _launch(cwd, _FACTS)


def forget_asked() -> None:
    """Drop what ``ask_facts_ahead`` started and nothing collected (the commands just end)."""
    _asked.clear()


def git_facts(cwd: Path, env: Mapping[str, str] | None = None) -> GitFacts:
    """Commit, remote, version and dirtiness of the checkout at ``cwd`` (None where unknown);
    from the commands ``ask_facts_ahead`` started for ``cwd``, if it did."""
    env = os.environ if env is None else env
    asked = _asked.pop(cwd.resolve(), None)
    sha, remote, version, status, when = _outputs(asked if asked is not None
                                                  else _launch(cwd, _FACTS))
    sha = sha or env.get("GITHUB_SHA")
    if env.get("GITHUB_SERVER_URL") and env.get("GITHUB_REPOSITORY"):
        remote = f"{env['GITHUB_SERVER_URL']}/{env['GITHUB_REPOSITORY']}"
    if env.get("GITHUB_REF_TYPE") == "tag":
        version = env.get("GITHUB_REF_NAME") or version
    return GitFacts(
        sha=sha,
        remote_url=remote,
        version=version,
        dirty=bool(status),
        commit_time=datetime.fromisoformat(when) if when else None,
    )
