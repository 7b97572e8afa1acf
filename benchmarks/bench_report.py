"""Benchmark: `immu report --json` on a 100,000-testcase JUnit file against a bare iterparse.

Generates the file (~8 MB, 10% failing with messages and file:line tracebacks) in a temp
dir, then measures, each as a fresh subprocess and the median of 3 runs, wall time and
peak RSS of:
  ours    python -m immu_action report --json FILE
  peer    a bare xml.etree.ElementTree.iterparse pass over FILE (the floor for any parser)
  extra   junitparser loading FILE and counting cases (the library peers use), if installed
Targets: ours/peer wall ratio <= 3.0 and our peak RSS <= 100 MB; exits 1 if one is missed.

    .venv/bin/python benchmarks/bench_report.py [--cases N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RATIO_TARGET = 3.0
RSS_TARGET_MB = 100.0

PEER = "import sys, xml.etree.ElementTree as ET\nfor _ in ET.iterparse(sys.argv[1]): pass\n"
JUNITPARSER = (
    "import sys\nfrom junitparser import JUnitXml\n"
    "print(sum(1 for s in JUnitXml.fromfile(sys.argv[1]) for _ in s))\n"
)


def generate(path: Path, cases: int) -> None:
    """A pytest-like report: 100 cases per suite, every 10th case failing with a traceback."""
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="utf-8"?>\n<testsuites>\n')
        per_suite = 100
        for s in range(0, cases, per_suite):
            mod = f"test_m{s // per_suite:03d}"
            out.write(f'<testsuite name="tests.{mod}" tests="{per_suite}">\n')
            for i in range(s, min(s + per_suite, cases)):
                head = f'<testcase classname="tests.{mod}" name="test_c{i}" time="0.0{i % 97:02d}"'
                if i % 10:
                    out.write(head + "/>\n")
                    continue
                out.write(
                    head + ">"
                    f'<failure message="AssertionError: assert {i} == {i + 1}">'
                    f"&gt;       assert cart.total == {i + 1}\n"
                    f"E       AssertionError: assert {i} == {i + 1}\n\n"
                    f"tests/{mod}.py:{i % 500 + 3}: AssertionError</failure></testcase>\n"
                )
            out.write("</testsuite>\n")
        out.write("</testsuites>\n")


Sample = tuple[float, float, float]  # wall s, CPU s (user + sys), peak RSS MB


def measure(argv: list[str], expect: int) -> Sample:
    """Wall and CPU seconds and peak RSS (MB) of one fresh subprocess (wait4: its own rusage)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != expect:
        raise SystemExit(f"{argv} exited {proc.returncode}, expected {expect}:\n{err}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # Linux: KiB


def median_of(argv: list[str], runs: int, expect: int) -> Sample:
    """Median wall time, CPU time and peak RSS over ``runs`` fresh runs."""
    samples = [measure(argv, expect) for _ in range(runs)]
    wall, cpu, rss = (statistics.median(s[i] for s in samples) for i in range(3))
    return wall, cpu, rss


def check_output(file: Path, cases: int) -> None:
    """The benchmark is only meaningful if our report is right: verify the totals once."""
    out = subprocess.run(
        [sys.executable, "-m", "immu_action", "report", "--json", str(file)],
        capture_output=True,
        text=True,
        check=False,
    )
    totals = json.loads(out.stdout)["totals"]
    want = {"tests": cases, "failed": cases // 10, "errors": 0}
    if any(totals[k] != v for k, v in want.items()):
        raise SystemExit(f"wrong totals {totals}, expected {want}")


def has_junitparser() -> bool:
    """Whether the optional peer is importable in this interpreter."""
    probe = subprocess.run([sys.executable, "-c", "import junitparser"], capture_output=True)
    return probe.returncode == 0


def main() -> int:
    """Generate, measure, print the table, and return 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="immu-bench-") as tmp:
        file, tiny = Path(tmp) / "junit.xml", Path(tmp) / "tiny.xml"
        generate(file, args.cases)
        generate(tiny, 1)
        size_mb = file.stat().st_size / 1e6
        check_output(file, args.cases)
        py = sys.executable
        rows = {
            "ours: immu report --json": median_of(
                [py, "-m", "immu_action", "report", "--json", str(file)], args.runs, expect=1
            ),
            "peer: bare ET.iterparse": median_of([py, "-c", PEER, str(file)], args.runs, 0),
        }
        # Start-up alone (1 test case): the part of our figure that is not parsing.
        rows["ours, start-up only"] = median_of(
            [py, "-m", "immu_action", "report", "--json", str(tiny)], args.runs, expect=1
        )
        if has_junitparser():
            rows["extra: junitparser"] = median_of(
                [py, "-c", JUNITPARSER, str(file)], args.runs, expect=0
            )
    print(f"{args.cases:,} testcases, {size_mb:.1f} MB, median of {args.runs} fresh processes")
    print(f"{'':28} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>12}")
    for name, (wall, cpu, rss) in rows.items():
        print(f"{name:28} {wall:8.3f} {cpu:8.3f} {rss:12.1f}")
    ours, peer = rows["ours: immu report --json"], rows["peer: bare ET.iterparse"]
    ratio = ours[0] / peer[0]
    print(f"{'ratio ours/peer':28} {ratio:8.2f} {ours[1] / peer[1]:8.2f} {ours[2] / peer[2]:12.2f}")
    misses = []
    if ratio > RATIO_TARGET:
        misses.append(f"wall ratio {ratio:.2f} > {RATIO_TARGET}")
    if ours[2] > RSS_TARGET_MB:
        misses.append(f"our peak RSS {ours[2]:.1f} MB > {RSS_TARGET_MB} MB")
    print(
        "targets: "
        + (
            "; ".join(misses)
            if misses
            else f"met (ratio <= {RATIO_TARGET}, RSS <= {RSS_TARGET_MB:.0f} MB)"
        )
    )
    return 1 if misses else 0


if __name__ == "__main__":
    raise SystemExit(main())
