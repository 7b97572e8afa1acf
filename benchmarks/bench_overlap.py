"""A pushed `immu run` after an application change, on a fresh engine, against a registry
some milliseconds away: ours against build-push-action followed by a test step.

The project is a multi-stage build, as most compiled or bundled services are: a dependency
stage of ``--layers`` small layers (all cached in the registry), and a final stage that
copies its output and the application. Its registry cache (``mode=max``) holds every layer
of both stages, so BuildKit's cache export checks each of them in the registry, one request
after another, while the pushed image has three. immu starts the suite once its image is
pushed and verified, while the cache export goes on; the peer is what a workflow with
docker/build-push-action (``push: true``, a ``type=registry,mode=max`` cache) and then a
``docker run`` test step does, one after the other. The registry is the loopback one behind
the fault proxy, which delays every request by ``--latency-ms`` (GitHub's runners to a
registry: tens of ms). Interleaved runs on Docker 26, containerd image store.

    .venv/bin/python benchmarks/bench_overlap.py [--runs 5] [--latency-ms 30] [--layers 20]

Target: ours <= 0.9x the peer.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_build import compiled, engine_env, fresh_engine, sh  # noqa: E402
from tests.support.faultproxy import FaultProxy, Rule  # noqa: E402
from tests.support.registry import PASSWORD, USER, docker_config, start_registry  # noqa: E402

TARGET = 0.9
BASE = "immu-base/busybox:1"
SUITE = "sleep 1; cat /app.txt"  # a short suite: the overlap is the cache export's time


def project(work: Path, repository: str, layers: int) -> None:
    steps = "".join(f"RUN echo dependency {n} > /deps/{n}\n" for n in range(layers))
    (work / "Dockerfile").write_text(
        f"FROM {BASE} AS deps\nRUN mkdir /deps\n{steps}"
        f"FROM {BASE}\nCOPY --from=deps /deps /deps\nCOPY app.txt /app.txt\n")
    (work / ".dockerignore").write_text(".git\n")
    (work / "app.txt").write_text("version 0\n")
    (work / "immu.yml").write_text(textwrap.dedent(f"""\
        version: 1
        image: {{repository: {repository}, cache: "{repository}:immu-buildcache"}}
        tests:
          app: {{command: [sh, -c, "{SUITE}"], junit: false}}
        """))
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    commit(work, "bench")


def commit(work: Path, message: str) -> None:
    git = ["git", "-C", str(work), "-c", "user.email=b@example.invalid", "-c", "user.name=b"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", message], check=True)


def ours(env: dict[str, str], work: Path, _repository: str) -> str:
    """``immu run --push`` as the action starts it (``-I``); its log."""
    done = subprocess.run([sys.executable, "-I", "-m", "immu_action", "run", "--push",
                           "-f", str(work / "immu.yml")], env=env, cwd=work,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"immu run failed:\n{done.stderr[-3000:]}")
    return done.stderr


def peer(env: dict[str, str], work: Path, repository: str) -> str:
    """build-push-action's CLI call, then the workflow's test step on the pushed image."""
    cache = f"{repository}:immu-buildcache"
    with tempfile.TemporaryDirectory() as meta:
        sh([env["IMMU_BUILDX"], "build", "--iidfile", f"{meta}/iid",
            "--metadata-file", f"{meta}/m.json", "--tag", f"{repository}:peer-{uuid.uuid4().hex}",
            "--cache-from", f"type=registry,ref={cache}",
            "--cache-to", f"type=registry,ref={cache},mode=max", "--push", str(work)], env)
        image = Path(f"{meta}/iid").read_text().strip()
    sh(["docker", "run", "--rm", image, "sh", "-c", SUITE], env)
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=30)
    parser.add_argument("--layers", type=int, default=20)
    args = parser.parse_args()
    engine = engine_env("docker26-containerd")
    sh([str(ROOT / "scripts" / "base-images.sh"), "busybox"], engine)
    compiled()
    registry = start_registry(f"bench-overlap-{uuid.uuid4().hex[:8]}")
    times: dict[str, list[float]] = {"ours": [], "peer": []}
    overlapped = 0
    with FaultProxy(registry.port) as proxy, tempfile.TemporaryDirectory() as tmp:
        for method in ("GET", "HEAD", "PUT", "POST", "PATCH"):
            proxy.add(Rule(method=method, path=".", delay_s=args.latency_ms / 1000,
                           times=10**9))
        env = {**engine, "DOCKER_CONFIG": str(docker_config(proxy.host)),
               "IMMU_REGISTRY_USERNAME": USER, "IMMU_REGISTRY_PASSWORD": PASSWORD}
        for tool, run in (("ours", ours), ("peer", peer)):
            repository = f"{proxy.host}/bench/{tool}"
            work = Path(tmp) / tool
            work.mkdir()
            project(work, repository, args.layers)
            fresh_engine(env, repository)
            run(env, work, repository)  # the registry cache, as a previous commit left it
        for n in range(args.runs):
            for tool, run in (("ours", ours), ("peer", peer)):
                repository, work = f"{proxy.host}/bench/{tool}", Path(tmp) / tool
                fresh_engine(env, repository)
                (work / "app.txt").write_text(f"version {n + 1}\n")
                commit(work, f"change {n + 1}")
                started = time.perf_counter()
                log = run(env, work, repository)
                times[tool].append(time.perf_counter() - started)
                overlapped += "the tests start while BuildKit exports" in log
            print(f"run {n + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()))
        for tool in times:
            fresh_engine(env, f"{proxy.host}/bench/{tool}")
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["ours"] / med["peer"]
    print(f"\n{args.layers} cached dependency layers, registry {args.latency_ms:.0f} ms away, "
          f"medians of {args.runs} interleaved runs")
    for k, v in med.items():
        print(f"  {k:<5} {v:6.2f} s")
    print(f"  the suite started during the cache export in {overlapped} of {args.runs} runs")
    print(f"  ours / peer: {ratio:.2f}x (target <= {TARGET}x)")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
