"""`immu run` on the bundled example vs the same work done with the bare docker CLI.

The spec has three suites, two of which need PostgreSQL: `unit`, `store`
(tests/integration/test_postgres_store.py) and `api` (tests/integration/test_http_api.py),
written next to a copy of the example. The peer does the same work one step after the other,
as a person's script would: build the image, then per suite a network, PostgreSQL with its
health check, the test container, copying the results out, removing it all. Same machine,
interleaved, warm layer cache for both. Prints medians, the ratio (target <= 0.6: immu runs
the suites at once) and our per-phase times from the run's --json.

    .venv/bin/python benchmarks/bench_run.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "python-service"
TARGET = 0.6
THREE = """
  store:
    command: [pytest, tests/integration/test_postgres_store.py, --junitxml=/immu/results/store.xml]
    results: /immu/results
    services: [db]
    env:
      DATABASE_URL: postgresql://postgres:test@db:5432/notes
    timeout: 10m
  api:
    command: [pytest, tests/integration/test_http_api.py, --junitxml=/immu/results/api.xml]
    results: /immu/results
    services: [db]
    env:
      DATABASE_URL: postgresql://postgres:test@db:5432/notes
    timeout: 10m
"""

# The docker CLI version of the example's immu.offline.yml (kept in step by hand; the
# script fails loudly if the suites stop passing).
PEER = r"""
set -euo pipefail
cd "$EXAMPLE"
img=$(docker build -q --build-arg BASE_IMAGE=immu-base/python:3 \
      --label org.opencontainers.image.vendor="immu-action example" .)
run_suite() {  # name, needs_db, command...
  local name=$1 db=$2; shift 2
  local net="bench-$$-$name"
  docker network create "$net" >/dev/null
  if [ "$db" = 1 ]; then
    docker run -d --name "$net-db" --network "$net" --network-alias db \
      -e POSTGRES_PASSWORD=test -e POSTGRES_DB=notes \
      --health-cmd 'pg_isready -h 127.0.0.1 -U postgres' --health-interval 1s \
      --health-retries 60 immu-base/postgres:15 >/dev/null
    until [ "$(docker inspect -f '{{.State.Health.Status}}' "$net-db")" = healthy ]; do
      sleep 0.2
    done
  fi
  docker run --name "$net-test" --network "$net" \
    -e DATABASE_URL=postgresql://postgres:test@db:5432/notes "$img" "$@"
  docker cp "$net-test:/immu/results" "$OUT/$name"
  docker rm -f "$net-test" >/dev/null
  [ "$db" = 1 ] && docker rm -f "$net-db" >/dev/null
  docker network rm "$net" >/dev/null
}
run_suite unit 0 pytest tests/unit --junitxml=/immu/results/unit.xml
run_suite store 1 pytest tests/integration/test_postgres_store.py --junitxml=/immu/results/store.xml
run_suite api 1 pytest tests/integration/test_http_api.py --junitxml=/immu/results/api.xml
"""


def bench_example(tmp: Path) -> Path:
    """A copy of the example whose spec has the three suites."""
    work = tmp / "example"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns(".immu", "__pycache__"))
    text = (work / "immu.offline.yml").read_text()
    head, _, _ = text.partition("  integration:")
    (work / "immu.bench.yml").write_text(head.rstrip() + "\n" + THREE.lstrip("\n")
                                          + text[text.index("promote:"):]
                                          if "promote:" in text else head.rstrip() + THREE)
    return work


def timed(cmd: list[str], env_extra: dict[str, str] | None = None) -> float:
    """Wall time of one command, which must succeed."""
    import os

    env = {**os.environ, **(env_extra or {})}
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{shlex.join(cmd[:4])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed


def main() -> int:
    """Measure both, print medians and the ratio, exit 1 when the target is missed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ours: list[float] = []
    peer: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = bench_example(Path(tmp))
        immu = [str(Path(sys.executable).parent / "immu"), "run", "-f",
                str(work / "immu.bench.yml"), "--json"]
        timed(immu)  # warm the layer cache for both (same Dockerfile, same base)
        for i in range(args.runs):
            out = Path(tmp) / f"peer{i}"
            out.mkdir()
            peer.append(timed(["bash", "-c", PEER], {"EXAMPLE": str(work), "OUT": str(out)}))
            ours.append(timed(immu))
        phases = json.loads(subprocess.run(immu, capture_output=True, text=True,
                                           check=True).stdout)
    ours_m, peer_m = statistics.median(ours), statistics.median(peer)
    ratio = ours_m / peer_m
    print(f"{'path':<34}{'median s':>10}  runs")
    print(f"{'immu run (example)':<34}{ours_m:>10.2f}  {', '.join(f'{t:.2f}' for t in ours)}")
    print(f"{'docker CLI, same work (peer)':<34}{peer_m:>10.2f}  "
          f"{', '.join(f'{t:.2f}' for t in peer)}")
    print(f"ratio immu/peer: {ratio:.3f} (target <= {TARGET})")
    timings = phases["timings"]
    print("our phases (one more run), seconds: " + ", ".join(
        f"{name} {spent:.2f}" for name, spent in timings["stages"].items())
        + f"; {timings['total_s']:.2f} in the run, the rest is start-up")
    for name, events in timings["suites"].items():
        ready = events.get("services_ready_s")
        print(f"  suite {name:<6} " + (f"services ready at {ready:5.2f}, " if ready is not None else
                                       " " * 26)
              + f"ran {events.get('started_s', 0):5.2f} to {events.get('ended_s', 0):5.2f}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
