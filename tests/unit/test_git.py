"""Git facts of a real checkout (``adapters.git``), asked ahead or not."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from immu_action.adapters import git
from tests.support.act import GIT


def checkout(tmp: Path) -> str:
    subprocess.run([*GIT, "init", "-q", str(tmp)], check=True)
    (tmp / "a.txt").write_text("a\n")
    subprocess.run([*GIT, "-C", str(tmp), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(tmp), "commit", "-qm", "one"], check=True)
    subprocess.run([*GIT, "-C", str(tmp), "remote", "add", "origin",
                    "https://example.invalid/o/r.git"], check=True)
    return subprocess.run([*GIT, "-C", str(tmp), "rev-parse", "HEAD"], check=True, text=True,
                          capture_output=True).stdout.strip()


def test_the_facts_of_a_checkout(tmp_path: Path) -> None:
    sha = checkout(tmp_path)
    facts = git.git_facts(tmp_path, env={})
    assert (facts.sha, facts.remote_url, facts.dirty) == (
        sha, "https://example.invalid/o/r.git", False)
    assert facts.commit_time is not None
    (tmp_path / "a.txt").write_text("changed\n")
    assert git.git_facts(tmp_path, env={}).dirty


def test_facts_asked_ahead_are_collected_not_asked_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``immu run`` starts git before it imports the pipeline; the build collects those
    commands' output (git runs once per fact), and the facts are the same."""
    work = tmp_path / "work"
    sha = checkout(work)
    calls, real = tmp_path / "calls", shutil.which("git")
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {calls}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    git.ask_facts_ahead(work)
    deadline = time.monotonic() + 10
    while len(calls.read_text().splitlines() if calls.exists() else []) < 5 \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    facts = git.git_facts(work, env={})
    assert len(calls.read_text().splitlines()) == 5
    assert facts == git.git_facts(work, env={}) and facts.sha == sha
    assert len(calls.read_text().splitlines()) == 10  # asked ahead once: the next one asks
