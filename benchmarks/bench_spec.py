"""Benchmark: `validate_text` (every check, every line) against YAML load + jsonschema.

The peer is what an editor or `check-jsonschema` does with our shipped schema: load the YAML
(with libyaml when PyYAML has it, as we do), then validate it. Ours composes the node tree,
checks keys/types/values/cross-references and builds the dataclasses. Measured in one
process, median of N runs, on a generated spec with many suites and services (and on the
small example spec) so that per-node cost shows.
Target: ours/peer <= 2.0 on the large spec; exits 1 when missed.

    .venv/bin/python benchmarks/bench_spec.py [--suites N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jsonschema
import yaml

from immu_action.commands.schema import schema_text
from immu_action.spec import validate_text

RATIO_TARGET = 2.0
EXAMPLE = Path(__file__).parents[1] / "tests" / "fixtures" / "specs" / "good" / "full.yml"


def generate(suites: int) -> str:
    """A valid spec with ``suites`` suites and ``suites // 4`` services."""
    lines = ["version: 1", "image:", "  repository: registry.example.com/acme/shop",
             "  build-args: {A: 1, B: two}", "services:"]
    services = max(1, suites // 4)
    for i in range(services):
        lines += [f"  svc-{i}:", "    image: postgres:16", "    env: {POSTGRES_PASSWORD: test}",
                  "    healthcheck: {test: [CMD, pg_isready], interval: 1s, retries: 60}"]
    lines.append("tests:")
    for i in range(suites):
        lines += [f"  suite-{i}:", f"    command: [pytest, -q, --junitxml=/immu/results/{i}.xml]",
                  f"    services: [svc-{i % services}]", "    env: {X: '1', Y: yes}",
                  "    timeout: 10m"]
    lines += ["promote:", "  branches: [main]", '  tags: ["{version}", "{major}", latest]']
    return "\n".join(lines) + "\n"


def median_s(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(text: str, where: Path, runs: int) -> tuple[float, float]:
    """(ours, peer) median seconds for one spec text."""
    validator = jsonschema.Draft202012Validator(json.loads(schema_text()))

    def ours() -> None:
        spec, problems = validate_text(text, path=where / "immu.yml")
        assert spec is not None, problems

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    def peer() -> None:
        assert validator.is_valid(yaml.load(text, Loader=loader))

    return median_s(ours, runs), median_s(peer, runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", type=int, default=400)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        (where / "Dockerfile").write_text("FROM scratch\n")
        large = generate(args.suites)
        rows = [("large", large, where), ("example", EXAMPLE.read_text(), EXAMPLE.parent)]
        ratio = 0.0
        for name, text, base in rows:
            ours, peer = measure(text, base, args.runs)
            print(f"{name:8} {len(text.splitlines()):6} lines  ours {ours * 1000:8.2f} ms  "
                  f"peer (load+jsonschema) {peer * 1000:8.2f} ms  ratio {ours / peer:5.2f}")
            ratio = ours / peer if name == "large" else ratio
    ok = ratio <= RATIO_TARGET
    print(f"target ours/peer <= {RATIO_TARGET} on the large spec: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
