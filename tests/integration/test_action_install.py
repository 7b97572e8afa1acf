"""The action's install step for real: the locked versions, hash-checked, wheels only; a lock
whose hash does not match what the index serves is refused (exit 4), nothing installed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
STEP = next(s for s in yaml.safe_load((ROOT / "action.yml").read_text())["runs"]["steps"]
            if s.get("id") == "venv")["run"]


def install(action: Path, temp: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    output = temp / "output"
    # The runner's own environment and pip configuration (CA bundle, proxy, index) stay.
    env = {**os.environ, "RUNNER_TEMP": str(temp), "GITHUB_OUTPUT": str(output),
           "IMMU_ACTION_PATH": str(action)}
    done = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", STEP],
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    python = re.findall(r"^python=(.*)$", output.read_text(), re.M) if output.exists() else []
    return done, python[0] if python else ""


def test_the_locked_versions_are_installed_and_the_action_runs(tmp_path: Path) -> None:
    done, python = install(ROOT, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"immu-action: installed with .* in \d+ ms", done.stdout), done.stdout
    freeze = subprocess.run([python, "-I", "-c", "import importlib.metadata as m; print('\\n'"
                             ".join(f'{d.metadata[\"Name\"].lower()}=={d.version}' for d in "
                             "m.distributions()))"], capture_output=True, text=True, check=True)
    locked = {line.split(" ")[0].lower() for line in
              (ROOT / "requirements" / "action.lock").read_text().splitlines()
              if "==" in line and not line.startswith(" ")}
    installed = {line.replace("_", "-") for line in freeze.stdout.split()}
    assert locked <= installed, locked - installed
    version = subprocess.run([python, "-I", "-m", "immu_action", "--version"],
                             capture_output=True, text=True, check=True)
    assert version.stdout.startswith("immu ")


def test_a_lock_with_a_wrong_hash_is_refused(tmp_path: Path) -> None:
    action = tmp_path / "action"
    action.mkdir()
    shutil.copy(ROOT / "pyproject.toml", action)
    (action / "requirements").mkdir()
    lock = (ROOT / "requirements" / "action.lock").read_text()
    first = re.search(r"--hash=sha256:([0-9a-f]{64})", lock)
    assert first is not None
    tampered = re.sub(r"--hash=sha256:[0-9a-f]{64}", "--hash=sha256:" + "0" * 64,
                      lock[:lock.index("\n", first.end())] + "\n")
    (action / "requirements" / "action.lock").write_text(tampered)
    temp = tmp_path / "temp"
    temp.mkdir()
    done, python = install(action, temp)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "::error title=immu-action::pip could not install immu-action" in done.stdout
    assert "do not match" in (done.stdout + done.stderr).lower() or "hash" in done.stderr.lower()
    assert python == ""


def test_the_install_leaves_bytecode_so_the_run_compiles_nothing(tmp_path: Path) -> None:
    """Without it the run compiles every module it imports (~0.7 s of a build job's start-up
    on 2 cores, before buildx is even launched)."""
    action = tmp_path / "action"
    action.mkdir()
    shutil.copy(ROOT / "pyproject.toml", action)
    shutil.copytree(ROOT / "requirements", action / "requirements")
    shutil.copytree(ROOT / "immu_action", action / "immu_action",
                    ignore=shutil.ignore_patterns("__pycache__"))
    temp = tmp_path / "temp"
    temp.mkdir()
    done, python = install(action, temp)
    assert done.returncode == 0, done.stdout + done.stderr
    # -B: this check writes no bytecode itself; every module a run imports must have its own.
    probe = textwrap.dedent("""\
        import importlib.util, os, sys
        import immu_action.run, immu_action.stages.test, immu_action.stages.push
        import immu_action.stages.report, docker, requests, github, yaml, junitparser
        roots = tuple(sys.argv[1:])
        files = [m.__file__ for m in list(sys.modules.values())
                 if getattr(m, "__file__", None) and m.__file__.endswith(".py")
                 and m.__file__.startswith(roots)]
        print(len(files))
        print("\\n".join(f for f in files
                         if not os.path.exists(importlib.util.cache_from_source(f))))
        """)
    site = subprocess.run([python, "-I", "-c", "import sysconfig; print(sysconfig.get_path("
                           "'purelib'))"], capture_output=True, text=True, check=True).stdout
    checked = subprocess.run([python, "-I", "-B", "-c", probe, site.strip(), str(action)],
                             capture_output=True, text=True, check=True).stdout.split("\n")
    assert int(checked[0]) > 100, checked[0]  # the dependencies and the package were seen
    assert [f for f in checked[1:] if f] == []
