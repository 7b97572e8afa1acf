"""Build, push and the tested==shipped proof on the engines users have (tests/support/engines):
Debian 12's Docker 20.10 without buildx, Docker 26 with buildx on the classic image store and
on the containerd snapshotter. BuildKit features, build secrets and the registry cache."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from immu_action.cli import main
from tests.support.act import GIT
from tests.support.docker_env import ROOT, busybox_image, docker_client, labelled  # noqa: F401
from tests.support.engines import (  # noqa: F401
    BUSYBOX,
    Engine,
    buildkit_engine,
    containerd_engine,
    engine,
    start_engine,
)
from tests.support.engines import run as run_script
from tests.support.registry import (  # noqa: F401
    PASSWORD,
    USER,
    Registry,
    registry,
    registry_env,
)

pytestmark = pytest.mark.docker
SECRET = "s3cr3t-immu-0123456789"

BUILDKIT_DOCKERFILE = f"""\
FROM {BUSYBOX}
RUN --mount=type=cache,target=/var/cache/app echo warm > /var/cache/app/x && echo built > /built
COPY --chmod=755 <<EOF /usr/local/bin/hello
#!/bin/sh
echo hello from a heredoc
EOF
"""


def project(tmp: Path, dockerfile: str, spec: str, **files: str) -> Path:
    (tmp / "Dockerfile").write_text(dockerfile)
    for name, text in files.items():
        (tmp / name).write_text(text)
    (tmp / "immu.yml").write_text(textwrap.dedent(spec))
    commit(tmp, "init")
    return tmp / "immu.yml"


def commit(tmp: Path, message: str) -> None:
    """A commit of the project (a push names the image by its commit)."""
    if not (tmp / ".git").exists():
        subprocess.run([*GIT, "init", "-q", str(tmp)], check=True)
    subprocess.run([*GIT, "-C", str(tmp), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(tmp), "commit", "-qm", message], check=True)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


def assert_clean(engine: Engine) -> None:  # noqa: F811
    assert labelled(engine.client, f"immu.pid={os.getpid()}") == ([], [])


def test_a_buildkit_dockerfile_builds_with_buildx_and_is_refused_clearly_without(
        tmp_path: Path, engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    spec = project(tmp_path, BUILDKIT_DOCKERFILE, """\
        version: 1
        image: {repository: local/immu-buildkit}
        tests:
          hello: {command: [sh, -c, "/usr/local/bin/hello | grep -q heredoc"],
                  junit: false}
        """)
    code, result, err = run(["run", "-f", str(spec), "--no-push", "--json"], capsys)
    assert "Traceback" not in err
    if engine.name == "docker20":
        assert code == 2, err
        assert "Dockerfile:2 uses RUN --mount" in err and "docker-buildx" in err, err
    else:
        assert code == 0, err
        assert result["totals"]["passed"] == 1, result
        assert "#1 [internal] load build definition from Dockerfile" in err  # BuildKit's log
    assert_clean(engine)


def test_build_secrets_reach_run_mount_and_nowhere_else(
        tmp_path: Path, buildkit_engine: Engine,  # noqa: F811
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMMU_TEST_TOKEN", SECRET)
    dockerfile = (f"FROM {BUSYBOX}\nARG GREETING=hi\n"
                  "RUN --mount=type=secret,id=token sh -c 'wc -c < /run/secrets/token > /length'\n")
    spec = project(tmp_path, dockerfile, f"""\
        version: 1
        image:
          repository: local/immu-secrets
          build-args: {{GREETING: hello}}
          secrets: {{token: {{env: IMMU_TEST_TOKEN}}}}
        tests:
          length: {{command: [sh, -c, "test $(cat /length) -eq {len(SECRET)}"], junit: false}}
        """)
    code, result, err = run(["run", "-f", str(spec), "--no-push", "--json"], capsys)
    assert code == 0, err
    assert result["totals"]["passed"] == 1, result  # the build saw the secret
    api = buildkit_engine.client.api
    image = result["image_id"]
    assert SECRET not in json.dumps(api.inspect_image(image))  # config, labels, build args
    assert SECRET not in json.dumps(api.history(image))
    assert SECRET.encode() not in b"".join(buildkit_engine.client.images.get(image).save())
    assert SECRET not in err + json.dumps(result)  # the log and the output
    assert_clean(buildkit_engine)


def test_a_push_proves_tested_is_shipped_on_each_image_store(
        tmp_path: Path, engine: Engine, registry: Registry,  # noqa: F811
        registry_env: None, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    spec = project(tmp_path, f"FROM {BUSYBOX}\nRUN echo {engine.name} > /engine\n", f"""\
        version: 1
        image: {{repository: {registry.host}/immu-it/stores-{engine.name}}}
        tests:
          engine: {{command: [sh, -c, "grep -q {engine.name} /engine"], junit: false}}
        """)
    code, result, err = run(["run", "-f", str(spec), "--push", "--json"], capsys)
    assert code == 0, err
    assert result["tested_is_shipped"] is True, result
    served = registry.client().get_manifest(f"immu-it/stores-{engine.name}",
                                            result["staging_tag"])
    assert served.digest == result["digest"], (served.digest, result["digest"])
    kind = "index" if "index" in served.media_type or "list" in served.media_type \
        else "manifest"
    assert result["digest_kind"] == kind, result
    if engine.containerd_store:
        assert result["image_id"] == result["digest"]  # the store names it by digest
    else:
        assert result["image_id"] != result["digest"]  # the config digest
    assert_clean(engine)


def fresh(engine: Engine, repository: str) -> None:  # noqa: F811
    """A fresh engine: no image of ``repository``, no build cache; only the registry has it."""
    for image in engine.client.images.list(name=repository):
        engine.client.images.remove(image.id, force=True)
    engine.client.api.prune_builds(all=True)


def build_steps(log: str) -> dict[str, bool]:
    """Each RUN/COPY step of a BuildKit log -> whether it was a cache hit.

    A hit is marked ``#N CACHED``, or, when BuildKit takes the step's result from an
    imported (registry) cache because a later step or the export needs its layer, the step
    shows only that layer's download and extraction (``#N sha256:... 157B / 157B done``,
    ``#N extracting sha256:...``) and no CACHED line: the step did not run either way. A
    step that ran prints its own output (``#N 0.123 ...``) or nothing but ``DONE``."""
    steps = re.findall(r"^(#\d+) \[(?:stage-0 )?\d+/\d+\] ((?:RUN|COPY) .*)$", log, re.M)

    def hit(number: str) -> bool:
        lines = re.findall(rf"^{number} (.*)$", log, re.M)
        fetched = any(re.match(r"(extracting )?sha256:[0-9a-f]{64}", line) for line in lines)
        ran = any(re.match(r"\d+\.\d+ ", line) for line in lines)
        return "CACHED" in lines or (fetched and not ran)

    return {text: hit(number) for number, text in steps}


@pytest.mark.parametrize("change", ["none", "app"])
def test_a_fresh_engine_rebuilds_from_the_registry_cache(
        tmp_path: Path, buildkit_engine: Engine, registry: Registry,  # noqa: F811
        registry_env: None, capsys: pytest.CaptureFixture[str], change: str,  # noqa: F811
        ) -> None:
    """One build exports the cache; on a fresh engine the next build of an unchanged context
    reuses every step, and after a change to the application code every step before it."""
    repository = f"{registry.host}/immu-it/cache-{uuid.uuid4().hex[:12]}"
    # The step is unique to this test run, so no earlier run's cache can serve it.
    dockerfile = (f"FROM {BUSYBOX}\nRUN echo expensive-step {uuid.uuid4().hex} && sleep 2 && "
                  "echo deps > /deps\nCOPY app.txt /app.txt\n")
    spec = project(tmp_path, dockerfile, f"""\
        version: 1
        image: {{repository: {repository}}}
        tests:
          app: {{command: [sh, -c, "test -f /deps && cat /app.txt"], junit: false}}
        """, **{"app.txt": "version 1\n"})
    fresh(buildkit_engine, repository)
    code, first, err = run(["run", "-f", str(spec), "--push", "--json"], capsys)
    assert code == 0, err
    assert not any(build_steps(err).values()), "the first build had a cache already"
    fresh(buildkit_engine, repository)
    if change == "app":
        (tmp_path / "app.txt").write_text("version 2\n")  # application code only
        commit(tmp_path, "app change")
    code, second, err = run(["run", "-f", str(spec), "--push", "--json"], capsys)
    assert code == 0, err
    steps = build_steps(err)
    assert "expensive-step" not in re.sub(r"^#\d+ \[.*$", "", err, flags=re.M), \
        "the expensive step ran again"  # its echo would be in the log
    expected = {"RUN": True, "COPY": change == "none"}
    assert {text.split()[0]: hit for text, hit in steps.items()} == expected, (steps, err[-4000:])
    if change == "app":
        assert second["digest"] != first["digest"]
    assert_clean(buildkit_engine)


# buildx, watched: the real one runs to its end, then its log is replayed up to the cache
# export's first line, where the "buildx" the run sees waits (WATCH_WAIT s at most) for a
# staging tag to appear in the registry, and says in WATCH_REPORT which did. WATCH_SWAP: the
# export names another image; WATCH_FAIL: the build then fails (in its cache export);
# WATCH_RELEASE: then buildx also waits (60 s at most) for that file to exist.
WATCHED_BUILDX = """#!{python} -I
import base64, json, os, re, subprocess, sys, time, urllib.error, urllib.request
env = os.environ
def staging_tags():
    request = urllib.request.Request(f"http://{{env['WATCH_REGISTRY']}}/v2/"
                                     f"{{env['WATCH_REPO']}}/tags/list")
    token = base64.b64encode(env["WATCH_AUTH"].encode()).decode()
    request.add_header("Authorization", f"Basic {{token}}")
    try:
        tags = json.load(urllib.request.urlopen(request, timeout=5)).get("tags") or []
    except urllib.error.HTTPError:
        tags = []
    return sorted(t for t in tags if t.startswith("immu-staging-"))
before = staging_tags()
done = subprocess.run([env["WATCH_BUILDX"], *sys.argv[1:]], stdout=subprocess.PIPE,
                      stderr=subprocess.STDOUT, text=True)
lines = done.stdout.splitlines(keepends=True)
if env.get("WATCH_SWAP"):
    lines = [re.sub(r"(exporting manifest) sha256:[0-9a-f]{{64}}",
                    lambda m: f"{{m.group(1)}} {{env['WATCH_SWAP']}}", x) for x in lines]
cut = next((i for i, x in enumerate(lines) if re.match(r"#\\d+ exporting cache", x)), None)
assert cut is not None, done.stdout
sys.stdout.writelines(lines[:cut + 1])
sys.stdout.flush()
seen, deadline = [], time.monotonic() + float(env["WATCH_WAIT"])
while not seen and time.monotonic() < deadline:
    seen = [t for t in staging_tags() if t not in before]
    time.sleep(0.1)
with open(env["WATCH_REPORT"], "w") as f:
    json.dump(seen, f)
deadline = time.monotonic() + 60
while env.get("WATCH_RELEASE") and not os.path.exists(env["WATCH_RELEASE"]) \
        and time.monotonic() < deadline:
    time.sleep(0.05)
def released():  # buildx ends now
    if env.get("WATCH_RELEASED"):
        with open(env["WATCH_RELEASED"], "w") as f:
            f.write(repr(time.time()))
time.sleep(float(env.get("WATCH_HOLD", "0")))  # the cache export takes this long
if env.get("WATCH_FAIL"):
    print("ERROR: failed to solve: exporting cache: the registry went away", flush=True)
    released()
    sys.exit(1)
sys.stdout.writelines(lines[cut + 1:])
sys.stdout.flush()
time.sleep(float(env.get("WATCH_LINGER", "0")))  # its log is out, buildx still runs
released()
sys.exit(done.returncode)
"""


def watch_buildx(tmp: Path, engine: Engine, registry: Registry, repository: str,  # noqa: F811
                 monkeypatch: pytest.MonkeyPatch, wait: float = 4.0, **switches: str) -> Path:
    """Builds from here on go through WATCHED_BUILDX; the path of its report."""
    wrapper, report = tmp / "watched-buildx", tmp / "watched.json"
    wrapper.write_text(WATCHED_BUILDX.format(python=sys.executable))
    wrapper.chmod(0o755)
    report.unlink(missing_ok=True)
    watch = {"WATCH_BUILDX": engine.env["IMMU_BUILDX"], "WATCH_REGISTRY": registry.host,
             "WATCH_REPO": repository.split("/", 1)[1], "WATCH_AUTH": f"{USER}:{PASSWORD}",
             "WATCH_WAIT": str(wait), "WATCH_REPORT": str(report), "IMMU_BUILDX": str(wrapper),
             **{f"WATCH_{k.upper()}": v for k, v in switches.items()}}
    for key, value in watch.items():
        monkeypatch.setenv(key, value)
    return report


def layered_project(tmp: Path, repository: str, *, run_step: bool = True) -> Path:
    """A dependency step (a RUN on deps.txt), unless not ``run_step``, and application code
    (app.txt) after it."""
    dockerfile = (f"FROM {BUSYBOX}\nCOPY deps.txt /deps.txt\n"
                  + (f"RUN echo built-{uuid.uuid4().hex} && cat /deps.txt > /deps-built\n"
                     if run_step else "") + "COPY app.txt /app.txt\n")
    return project(tmp, dockerfile, f"""\
        version: 1
        image: {{repository: {repository}}}
        tests:
          app: {{command: [sh, -c, "test -f /deps.txt && head -c 9 /app.txt"], junit: false}}
        """, **{"deps.txt": "deps 1\n", "app.txt": "version 1\n"})


@pytest.mark.parametrize("change", ["app", "deps", "big-app"])
def test_the_push_starts_during_the_cache_export_when_only_context_files_are_new(
        tmp_path: Path, containerd_engine: Engine, registry: Registry,  # noqa: F811
        registry_env: None, capsys: pytest.CaptureFixture[str],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    """On a fresh engine rebuilding from the registry cache after an application change, the
    push runs while BuildKit exports the cache (it no longer waits for it). Not on a cold
    build (even one without RUN: the base image's layers are new to the registry), nor when
    a RUN step ran again or the context is large: there the push would upload the new
    layers while the cache export uploads them too, twice the bytes; it waits instead and
    finds them there."""
    repository = f"{registry.host}/immu-it/early-{uuid.uuid4().hex[:12]}"
    work = tmp_path / "project"
    work.mkdir()
    spec = layered_project(work, repository, run_step=change != "big-app")
    report = watch_buildx(tmp_path, containerd_engine, registry, repository, monkeypatch)
    fresh(containerd_engine, repository)
    code, first, err = run(["run", "-f", str(spec), "--push", "--json"], capsys)
    assert code == 0, err
    assert json.loads(report.read_text()) == [], "a cold build pushed during its cache export"
    assert "pushed while BuildKit exported" not in err
    fresh(containerd_engine, repository)
    if change == "big-app":  # 9 MB of application (random: it stays 9 MB compressed)
        (work / "app.txt").write_bytes(b"version 2" + os.urandom(9_000_000))
    else:
        (work / f"{change}.txt").write_text(f"{change} 2\n")
    commit(work, f"{change} change")
    code, second, err = run(["run", "-f", str(spec), "--push", "--json"], capsys)
    assert code == 0, err
    seen = json.loads(report.read_text())
    if change == "app":
        assert seen == [second["staging_tag"]], (seen, err[-3000:])
        assert "(pushed while BuildKit exported the build cache)" in err
    else:
        assert seen == [], "the push ran beside a cache export uploading a RUN's new layer"
    assert second["tested_is_shipped"] is True, second
    served = registry.client().get_manifest(repository.split("/", 1)[1], second["staging_tag"])
    assert served.digest == second["digest"] != first["digest"]
    assert_clean(containerd_engine)


@pytest.mark.parametrize("after", ["another-image", "build-fails"])
def test_a_push_made_during_the_cache_export_is_checked_against_the_build(
        tmp_path: Path, containerd_engine: Engine, registry: Registry,  # noqa: F811
        registry_env: None, capsys: pytest.CaptureFixture[str],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, after: str) -> None:
    """The early push names the image by what buildx printed; when buildx's result names
    another, the built image is pushed over it (the proof holds). When the build then fails
    in its cache export, the run fails at the build and says that its staging tag was
    pushed."""
    repository = f"{registry.host}/immu-it/early-{uuid.uuid4().hex[:12]}"
    work = tmp_path / "project"
    work.mkdir()
    spec = layered_project(work, repository)
    fresh(containerd_engine, repository)
    code, _, err = run(["run", "-f", str(spec), "--push", "--json"], capsys)
    assert code == 0, err
    other = containerd_engine.client.images.get(BUSYBOX).id
    switches = {"swap": other} if after == "another-image" else {"fail": "1"}
    report = watch_buildx(tmp_path, containerd_engine, registry, repository, monkeypatch,
                          **switches)
    fresh(containerd_engine, repository)
    (work / "app.txt").write_text("version 2\n")
    commit(work, "app change")
    code, result, err = run(["run", "-f", str(spec), "--push", "--json"], capsys)
    seen = json.loads(report.read_text())
    assert len(seen) == 1, (seen, err[-3000:])  # pushed during the cache export
    if after == "another-image":
        assert code == 0, err
        assert f"the image pushed during the build ({other}) is not the one built" in err
        assert result["tested_is_shipped"] is True, result
        served = registry.client().get_manifest(repository.split("/", 1)[1], seen[0])
        assert served.digest == result["digest"] == result["image_id"]
        assert served.digest != other
    else:
        assert code != 0
        assert "building image failed: ERROR: failed to solve: exporting cache: the " \
               "registry went away" in err, err[-3000:]
        assert f"{repository}:{seen[0]} was pushed before the build ended" in err
    assert_clean(containerd_engine)


def test_the_build_names_the_staging_tag_and_the_push_is_verified_during_the_cache_export(
        tmp_path: Path, containerd_engine: Engine, registry: Registry,  # noqa: F811
        registry_env: None, capsys: pytest.CaptureFixture[str],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """buildx gives the image the staging tag itself (the push makes no tag call), and the
    early push is verified in the registry and named by digest before the cache export
    ends: after buildx, nothing of the push is left to do."""
    from immu_action.adapters.registry.promotion import Registries
    from immu_action.spec import load_spec
    from immu_action.stages import build as build_stage
    from immu_action.stages.push import push_image, push_while_built

    repository = f"{registry.host}/immu-it/early-{uuid.uuid4().hex[:12]}"
    work = tmp_path / "project"
    work.mkdir()
    spec_path = layered_project(work, repository)
    client = containerd_engine.client
    fresh(containerd_engine, repository)
    code, _, err = run(["run", "-f", str(spec_path), "--push", "--json"], capsys)
    assert code == 0, err
    release = tmp_path / "release"
    watch_buildx(tmp_path, containerd_engine, registry, repository, monkeypatch,
                 release=str(release))
    fresh(containerd_engine, repository)
    (work / "app.txt").write_text("version 2\n")
    commit(work, "app change")
    spec, tag = load_spec(spec_path), f"immu-staging-{uuid.uuid4().hex[:8]}"
    started = build_stage.start(spec, log=lambda _: None, export_cache=True,
                                engine_info=lambda: build_stage.engine_info(lambda: client),
                                also_tag=f"{repository}:{tag}")
    assert started.running is not None
    try:
        exported = started.running.exported()
        named = client.images.get(f"{repository}:{tag}").id  # named by buildx, not by us
        assert named in exported
        early = push_while_built(client, spec, started.running, tag=tag, holds=None,
                                 registries=Registries(), insecure=False)
        assert early is not None and early.error is None, early
        assert early.pushed is not None  # verified while buildx is held in its cache export
        assert started.running._proc.poll() is None
        served = registry.client().get_manifest(repository.split("/", 1)[1], tag)
        assert early.pushed.digest == served.digest == named == early.pushed.image_id
    finally:
        release.touch()
    built = build_stage.finish(started, client, known=early.image_id)
    assert built.image_id == named and built.also_tag == f"{repository}:{tag}"
    assert push_image(client, spec, built, tag=tag, holds=None, insecure=False,
                      registries=Registries(), early=early) == early.pushed


def held_rebuild(tmp: Path, engine: Engine, registry: Registry,  # noqa: F811
                 monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *,
                 command: str = "head -c 9 /app.txt",
                 **switches: str) -> tuple[str, Path, Path]:
    """A project pushed once; then an application change, rebuilt on a fresh engine whose
    buildx is held in its cache export (``hold``: s before the rest of its log, ``linger``:
    s after it; the time it ended is written to the returned file). Returns the
    repository, the spec and that file."""
    repository = f"{registry.host}/immu-it/ahead-{uuid.uuid4().hex[:12]}"
    work = tmp / "project"
    work.mkdir()
    spec = project(work, f"FROM {BUSYBOX}\nCOPY app.txt /app.txt\n", f"""\
        version: 1
        image: {{repository: {repository}}}
        tests:
          app: {{command: [sh, -c, "{command}"], junit: false}}
        """, **{"app.txt": "version 1\n"})
    fresh(engine, repository)
    code, _, err = run(["run", "-f", str(spec), "--push", "--json"], capsys)
    assert code == 0, err
    released = tmp / "released"
    watch_buildx(tmp, engine, registry, repository, monkeypatch, released=str(released),
                 **switches)
    fresh(engine, repository)
    (work / "app.txt").write_text("version 2\n")
    commit(work, "app change")
    return repository, spec, released


def test_the_tests_run_while_buildkit_exports_the_cache(
        tmp_path: Path, containerd_engine: Engine, registry: Registry,  # noqa: F811
        registry_env: None, capsys: pytest.CaptureFixture[str],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the image is pushed and verified during the cache export, the suites run: they
    do not wait for BuildKit's cache export (on a remote registry it can take as long as
    they do). The run still waits for it before it ends, the rest of buildx's log comes
    after the suites' (not in the middle of them), and the proof holds."""
    _, spec, released = held_rebuild(tmp_path, containerd_engine, registry, monkeypatch,
                                     capsys, linger="6")
    began = time.time()
    code, result, err = run(["run", "-f", str(spec), "--push", "--json"], capsys)
    assert code == 0, err
    suite = result["timings"]["suites"]["app"]
    assert began + suite["ended_s"] < float(released.read_text()), (suite, err[-3000:])
    assert "the tests start while BuildKit exports the build cache" in err
    assert err.index("version 2") < err.index("writing cache manifest"), err[-3000:]
    assert result["tested_is_shipped"] is True and result["digest"] == result["image_id"]
    assert result["timings"]["total_s"] > 6  # buildx was waited for
    assert_clean(containerd_engine)


def test_a_cache_export_failing_after_the_tests_fails_the_run_at_the_build(
        tmp_path: Path, containerd_engine: Engine, registry: Registry,  # noqa: F811
        registry_env: None, capsys: pytest.CaptureFixture[str],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """As when the run waits for it: buildx failing in its cache export fails the run (at
    the build stage), whose suites ran meanwhile and are reported with it."""
    _, spec, _ = held_rebuild(tmp_path, containerd_engine, registry, monkeypatch, capsys,
                              hold="1", fail="1")
    code, result, err = run(["run", "-f", str(spec), "--push", "--json"], capsys)
    assert code != 0
    assert "the tests start while BuildKit exports the build cache" in err
    assert "building image failed: ERROR: failed to solve: exporting cache: the registry " \
           "went away" in err, err[-3000:]
    assert err.index("version 2") < err.index("the registry went away")
    assert "was pushed before the build ended" in err
    assert "exporting cache: the registry went away" in result["error"]["message"], result
    assert "ended_s" in result["timings"]["suites"]["app"], result  # it ran, to its end
    assert_clean(containerd_engine)


def test_a_cancel_while_the_tests_run_beside_the_cache_export_stops_both(
        tmp_path: Path, containerd_engine: Engine, registry: Registry,  # noqa: F811
        registry_env: None, capsys: pytest.CaptureFixture[str],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's cancel during the suites while buildx is still at the cache export:
    the suite's containers and buildx are stopped; nothing is left."""
    from tests.integration.test_cancellation import runner_cancel, wait_for

    _, spec, _ = held_rebuild(tmp_path, containerd_engine, registry, monkeypatch, capsys,
                              hold="300",
                              command="if grep -q 2 /app.txt; then sleep 300; fi")
    proc = subprocess.Popen([sys.executable, "-m", "immu_action", "run", "-f", str(spec),
                             "--push"], env={**os.environ, "IMMU_KEEP": ""},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    label = f"immu.pid={proc.pid}"
    try:
        wait_for("the suite's container", lambda: bool(
            containerd_engine.client.api.containers(filters={"label": label})), proc)
        err, took = runner_cancel(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert took < 7.5, f"not gone on SIGINT alone ({took:.1f} s):\n{err[-3000:]}"
    assert "the tests start while BuildKit exports the build cache" in err
    assert labelled(containerd_engine.client, label) == ([], [])
    wrapper = str(tmp_path / "watched-buildx")
    left = [p for p in Path("/proc").glob("[0-9]*")
            if wrapper in (p / "cmdline").read_bytes().decode(errors="replace")
            ] if Path("/proc").is_dir() else []
    assert left == [], "buildx (its wrapper) still runs"


@pytest.mark.parametrize("chosen", [None, "150"])
def test_buildx_prints_its_log_as_it_goes_unless_the_user_chose_a_rate(
        tmp_path: Path, containerd_engine: Engine, capsys: pytest.CaptureFixture[str],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, chosen: str | None) -> None:
    """buildx's plain log every 25 ms, not in 100 ms bursts (the export is seen when it
    ends, so the push can start then); a rate the user set stays theirs."""
    rate = tmp_path / "rate"
    wrapper = tmp_path / "buildx"
    wrapper.write_text(f'#!/bin/sh\nprintf %s "${{TTY_DISPLAY_RATE-unset}}" > {rate}\n'
                       f'exec {containerd_engine.env["IMMU_BUILDX"]} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("IMMU_BUILDX", str(wrapper))
    if chosen:
        monkeypatch.setenv("TTY_DISPLAY_RATE", chosen)
    else:
        monkeypatch.delenv("TTY_DISPLAY_RATE", raising=False)
    spec = project(tmp_path, f"FROM {BUSYBOX}\nRUN echo built > /built\n", """\
        version: 1
        image: {repository: local/immu-rate}
        tests:
          built: {command: [test, -f, /built], junit: false}
        """)
    code, _, err = run(["run", "-f", str(spec), "--no-push", "--json"], capsys)
    assert code == 0, err
    assert rate.read_text() == (chosen or "25")
    assert "#1 [internal] load build definition from Dockerfile" in err
    assert_clean(containerd_engine)


def test_target_args_labels_and_a_reproducible_created_time_with_buildkit(
        tmp_path: Path, buildkit_engine: Engine,  # noqa: F811
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    dockerfile = (f"FROM {BUSYBOX} AS base\nARG FLAVOUR=none\nRUN echo $FLAVOUR > /flavour\n"
                  "FROM base AS runtime\nRUN echo runtime > /stage\n"
                  "FROM base AS debug\nRUN echo debug > /stage\n")
    spec = project(tmp_path, dockerfile, """\
        version: 1
        image:
          repository: local/immu-buildkit-args
          target: runtime
          build-args: {FLAVOUR: vanilla}
          labels: {org.example.team: payments}
        tests:
          args: {command: [sh, -c, "grep -q vanilla /flavour && grep -q runtime /stage"],
                 junit: false}
        """)
    code, result, err = run(["run", "-f", str(spec), "--no-push", "--json"], capsys)
    assert code == 0, err
    config = buildkit_engine.client.api.inspect_image(result["image_id"])
    labels = config["Config"]["Labels"]
    assert labels["org.example.team"] == "payments"
    assert labels["org.opencontainers.image.revision"] == result["labels"][
        "org.opencontainers.image.revision"]
    assert labels["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    assert config["Created"].startswith("2023-11-14T22:13:20"), config["Created"]
    assert_clean(buildkit_engine)


def test_restarting_a_side_engine_keeps_the_system_engines_default_bridge(
        docker_client: docker.DockerClient, busybox_image: str) -> None:  # noqa: F811
    """Docker 26 deletes the interface docker0 when it finds a stale default network in its
    store and has an address pool: a second start of a side engine (a re-run on the same
    machine) took the system engine's bridge, and every default-network container with it."""
    start_engine("docker26")  # its store now holds its default network
    script = str(ROOT / "scripts" / "engines.sh")
    run_script([script, "stop", "docker26"], {}, what="engines.sh stop docker26")
    run_script([script, "start", "docker26"], {}, what="engines.sh start docker26")
    out = docker_client.containers.run(busybox_image, ["ip", "-4", "-o", "addr", "show", "eth0"],
                                       remove=True, network_mode="bridge",
                                       labels={"immu.pid": str(os.getpid())})
    assert re.search(rb"inet 172\.\d+\.\d+\.\d+/", out), out
