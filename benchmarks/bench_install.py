"""The action's own install step (action.yml, step `venv`), cold and warm, against the plain
install it replaced: a venv and `pip install <the action>` with unpinned dependencies.

Cold: an empty pip cache (every wheel downloaded from PyPI, as on a hosted runner: this
machine's own pip configuration is left out); warm: the cache the cold
run left (as on a runner whose pip cache is kept). Each install gets a fresh RUNNER_TEMP, so
none reuses the venv of another. Prints medians, the ratios and the install step's own
report of its time. Target: the warm install <= 5 s.

    .venv/bin/python benchmarks/bench_install.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STEP = next(s for s in yaml.safe_load((ROOT / "action.yml").read_text())["runs"]["steps"]
            if s.get("id") == "venv")["run"]
WARM_TARGET_S = 5.0
# A hosted runner's pip: PyPI and nothing else. This machine's pip configuration (local wheel
# folders, on-disk indexes) would make "cold" warm; its CA bundle stays (a TLS proxy).
RUNNER_PIP = {"PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": "", "PIP_EXTRA_INDEX_URL": "",
              "PIP_NO_INDEX": ""}


def runner_env(cache: Path) -> dict[str, str]:
    """The environment of an install: the machine's, with a runner's pip and ``cache``."""
    env = {k: v for k, v in os.environ.items() if k not in RUNNER_PIP}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_CACHE_DIR": str(cache)}


def ours(temp: Path, cache: Path) -> tuple[float, str]:
    """The action's install step, as the runner runs it; (seconds, its own report line)."""
    env = {**runner_env(cache), "RUNNER_TEMP": str(temp), "GITHUB_OUTPUT": str(temp / "output"),
           "IMMU_ACTION_PATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", STEP],
                          env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the install step failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    said = re.search(r"installed with .*", done.stdout)
    return elapsed, said.group(0) if said else ""


def peer(temp: Path, cache: Path) -> float:
    """What the action did before: a venv with pip, then the package and its newest deps."""
    env = runner_env(cache)
    started = time.perf_counter()
    for cmd in ([sys.executable, "-m", "venv", str(temp / "venv")],
                [str(temp / "venv" / "bin" / "pip"), "install", "-q",
                 "--disable-pip-version-check", str(ROOT)]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"{cmd[0]} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> int:
    """Cold then warm for each, per run with an empty cache of its own; exit 1 past target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {k: [] for k in ("ours-cold", "ours-warm", "peer-cold",
                                                      "peer-warm")}
    reports = []
    for _ in range(args.runs):
        for tool in ("ours", "peer"):
            with tempfile.TemporaryDirectory() as tmp:
                cache = Path(tmp, "pip-cache")
                for phase in ("cold", "warm"):
                    temp = Path(tmp, phase)
                    temp.mkdir()
                    if tool == "ours":
                        spent, said = ours(temp, cache)
                        reports.append(said)
                    else:
                        spent = peer(temp, cache)
                    times[f"{tool}-{phase}"].append(spent)
                    shutil.rmtree(temp)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"medians of {args.runs} runs (python {sys.version.split()[0]})")
    for k, v in med.items():
        print(f"  {k:<10} {v:6.2f} s   ({', '.join(f'{t:.2f}' for t in times[k])})")
    print(f"  ours/peer cold: {med['ours-cold'] / med['peer-cold']:.2f}x, "
          f"warm: {med['ours-warm'] / med['peer-warm']:.2f}x")
    print(f"  the step's own report: {reports[-1]}")
    print(f"  warm install {med['ours-warm']:.2f} s (target <= {WARM_TARGET_S:g} s)")
    return 0 if med["ours-warm"] <= WARM_TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
