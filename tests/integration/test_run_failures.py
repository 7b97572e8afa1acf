"""Every failure of ``immu run`` is reported: one fault per stage (build, push, service, test
container, promotion, GitHub itself) against the real engine and registry, in a pretend Actions
step reporting to the emulator. Each asserts what GitHub and the runner files received and the
exit code the README promises; none may leave a container behind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from immu_action import run as pipeline
from immu_action.adapters.docker import results
from immu_action.adapters.github.client import client_for
from immu_action.cli import main
from immu_action.stages import test as test_stage
from tests.integration.test_pipeline_docker import assert_clean, write_project
from tests.support.github_emulator import GitHubEmulator
from tests.support.github_emulator.helpers import FAST, OLD, SHA
from tests.support.registry import Registry, registry, registry_env  # noqa: F401
from tests.support.runner_files import parse_outputs

pytestmark = pytest.mark.docker


@pytest.fixture
def step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry_env: None,  # noqa: F811
         ) -> Iterator[dict[str, Any]]:
    """A push to protected main in a pretend Actions step, reporting to the emulator."""
    emu = GitHubEmulator().start()
    emu.state.add_branch("main", OLD, SHA, protected=True)
    files = {"output": tmp_path / "output", "summary": tmp_path / "summary.md"}
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(files["output"]),
           "GITHUB_STEP_SUMMARY": str(files["summary"]), "GITHUB_REPOSITORY": "acme/shop",
           "GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": SHA,
           "GITHUB_RUN_ID": "77", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_API_URL": emu.url,
           "GITHUB_SERVER_URL": "https://github.example", "GITHUB_TOKEN": emu.token,
           "GITHUB_EVENT_PATH": str(tmp_path / "no-event.json")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(pipeline, "_github", lambda ctx: client_for(ctx, FAST))  # quick retries
    try:
        yield {"emu": emu, **files}
    finally:
        emu.stop()
    assert emu.violations == []


def outputs(path: Path) -> dict[str, str]:
    """``$GITHUB_OUTPUT`` as the runner reads it."""
    return parse_outputs(path.read_text())


def reported(step: dict[str, Any], *, headline: str, state: str = "error") -> dict[str, Any]:
    """What every failed run must leave: status, check run, step summary, outputs."""
    emu: GitHubEmulator = step["emu"]
    assert emu.state.statuses_for(SHA).get("immu") == state, emu.state.statuses
    (status,) = [s for s in emu.state.statuses if s["context"] == "immu"]
    assert status["description"].startswith(headline.capitalize()), status
    (run,) = emu.state.check_runs.values()
    assert run["conclusion"] == "failure" and run["output"]["title"].startswith(headline), run
    assert status["target_url"] == run["html_url"]
    summary = step["summary"].read_text()
    assert f"## immu: {headline}" in summary and run["html_url"] in summary, summary
    out = outputs(step["output"])
    assert out["conclusion"] == "failure" and out["error"], out
    assert json.loads(out["results-json"])["failure"]["message"] == out["error"]
    return {"run": run, "summary": summary, "out": out}


OURS = re.compile(r"^::(group::|endgroup::|stop-commands::[0-9a-f]{32}$|warning |add-mask::)")


def obeyed(log: str) -> list[str]:
    """The workflow commands the runner would obey in ``log`` (lines outside every fence)."""
    resume: str | None = None
    out = []
    for line in log.splitlines():
        if resume is not None:
            if line == f"::{resume}::":
                resume = None
            continue
        if line.startswith("::stop-commands::"):
            resume = line.removeprefix("::stop-commands::")
        elif line.startswith("::"):
            out.append(line)
    return out


def test_a_failing_build_is_reported_with_its_failing_step(
        tmp_path: Path, busybox_image: str, step: dict[str, Any], registry: Registry,  # noqa: F811
        docker_client: docker.DockerClient, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_project(tmp_path, busybox_image, f"""\
    version: 1
    image: {{repository: {registry.host}/immu-it/broken}}
    tests:
      unit: {{command: ["true"], junit: false}}
    """)
    dockerfile = tmp_path / "Dockerfile"
    # The build log and the error quoting it come from the user's (or a PR author's) code:
    # their workflow commands must reach the runner fenced.
    dockerfile.write_text(dockerfile.read_text() + "RUN echo '::add-mask::build-log' && "
                          "echo '::error::spoofed' && echo the-last-words && exit 7\n")
    assert main(["run", "-f", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "::error::spoofed" in err and "::add-mask::build-log" in err
    assert all(OURS.match(line) for line in obeyed(err)), obeyed(err)
    got = reported(step, headline="build failed")
    assert "the-last-words" in got["summary"] and "exit" in got["out"]["error"], got
    assert got["out"]["image-id"] == "" and got["out"]["digest"] == ""
    assert_clean(docker_client)


def test_a_refused_push_is_reported(
        tmp_path: Path, busybox_image: str, step: dict[str, Any], registry: Registry,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, docker_client: docker.DockerClient) -> None:
    spec = write_project(tmp_path, busybox_image, f"""\
    version: 1
    image: {{repository: {registry.host}/immu-it/refused}}
    tests:
      unit: {{command: ["true"], junit: false}}
    """)
    monkeypatch.setenv("IMMU_REGISTRY_PASSWORD", "not-the-password-xyz")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty-docker-config"))
    assert main(["run", "-f", str(spec), "--push"]) == 4
    got = reported(step, headline="push failed")
    # refused while the image builds (the staging tag is looked up then): the build stops
    error = got["out"]["error"].lower()
    assert got["out"]["image-id"] == "" and ("401" in error or "unauthorized" in error or
                                             "credentials" in error), got["out"]
    assert "not-the-password-xyz" not in step["summary"].read_text()
    assert_clean(docker_client)


def test_a_service_that_cannot_be_had_is_reported(
        tmp_path: Path, busybox_image: str, step: dict[str, Any],
        docker_client: docker.DockerClient) -> None:
    spec = write_project(tmp_path, busybox_image, """\
    version: 1
    image: {repository: local/immu-it/no-service}
    services:
      db: {image: "127.0.0.1:9/immu-it/never-there:1"}
    tests:
      unit: {command: ["true"], junit: false, services: [db]}
    """)
    assert main(["run", "-f", str(spec), "--no-push"]) == 4
    got = reported(step, headline="test run failed")
    assert "service db" in got["out"]["error"] and "never-there" in got["out"]["error"]
    assert_clean(docker_client)


def test_a_test_container_whose_results_are_over_the_limit_is_reported(
        tmp_path: Path, busybox_image: str, step: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch, docker_client: docker.DockerClient) -> None:
    monkeypatch.setattr(results, "MAX_RESULTS_BYTES", 1024 * 1024)
    spec = write_project(tmp_path, busybox_image, """\
    version: 1
    image: {repository: local/immu-it/big-results}
    tests:
      unit: {command: [sh, -c, "dd if=/dev/zero of=/immu/results/big bs=1024 count=2048"]}
    """)
    assert main(["run", "-f", str(spec), "--no-push"]) == 4
    got = reported(step, headline="test run failed")
    assert "larger than 1048576 bytes" in got["out"]["error"]
    assert_clean(docker_client)


def test_a_promotion_refused_by_an_immutable_tag_is_reported_and_exits_3(
        tmp_path: Path, busybox_image: str, step: dict[str, Any], registry: Registry,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, docker_client: docker.DockerClient) -> None:
    monkeypatch.setenv("GITHUB_REF", "refs/tags/v1.0.0")
    text = f"""\
    version: 1
    image: {{repository: {registry.host}/immu-it/immutable}}
    tests:
      unit: {{command: [sh, -c, "cp /fixtures/it.xml /immu/results/"]}}
    promote: {{branches: [main], tags: ["{{version}}", latest]}}
    """
    spec = write_project(tmp_path, busybox_image, text, marker="first")
    assert main(["run", "-f", str(spec), "--push"]) == 0
    first = outputs(step["output"])
    assert first["promoted-tags"].split() == ["1.0.0", "latest"], first
    step["output"].unlink()
    step["summary"].unlink()
    step["emu"].state.check_runs.clear()
    step["emu"].state.statuses.clear()
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("echo first", "echo second"))
    monkeypatch.setenv("GITHUB_RUN_ATTEMPT", "2")  # "Re-run jobs": its own staging tag
    assert main(["run", "-f", str(spec), "--push"]) == 3
    got = reported(step, headline="promotion refused", state="failure")
    assert "immutable" in got["out"]["error"] and "1.0.0" in got["out"]["error"]
    assert got["out"]["digest"] != first["digest"] and got["out"]["promoted-tags"] == ""
    assert got["out"]["tests"] == "1" and got["out"]["failed"] == "0"  # the tests passed
    assert registry.client().head_manifest("immu-it/immutable", "1.0.0") == first["digest"]
    assert registry.client().head_manifest("immu-it/immutable", "latest") == first["digest"]
    assert_clean(docker_client)


def test_github_down_still_leaves_the_summary_and_outputs_and_exits_4(
        tmp_path: Path, busybox_image: str, step: dict[str, Any],
        docker_client: docker.DockerClient, capsys: pytest.CaptureFixture[str]) -> None:
    step["emu"].inject("POST", "/check-runs", "502", times=100)
    spec = write_project(tmp_path, busybox_image, """\
    version: 1
    image: {repository: local/immu-it/github-down}
    tests:
      unit: {command: [sh, -c, "cp /fixtures/it.xml /immu/results/"]}
    """)
    assert main(["run", "-f", str(spec), "--no-push"]) == 4
    assert "HTTP 502" in capsys.readouterr().err
    assert "## immu: tests passed" in step["summary"].read_text()
    out = outputs(step["output"])
    assert out["conclusion"] == "success" and out["tests"] == "1", out
    assert_clean(docker_client)


def test_an_unexpected_exception_is_one_line_and_exit_4_reported(
        tmp_path: Path, busybox_image: str, step: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch, docker_client: docker.DockerClient,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A bug is not "tests failed" (1): exit 4, one line, still reported."""
    def broken(*_: Any, **__: Any) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(test_stage, "run_suites", broken)
    spec = write_project(tmp_path, busybox_image, """\
    version: 1
    image: {repository: local/immu-it/bug}
    tests:
      unit: {command: ["true"], junit: false}
    """)
    assert main(["run", "-f", str(spec), "--no-push"]) == 4
    err = capsys.readouterr().err
    assert "Traceback" not in err and "unexpected KeyError" in err and "IMMU_DEBUG" in err
    reported(step, headline="internal error")
    assert_clean(docker_client)


def test_a_push_never_overwrites_an_existing_tag(
        tmp_path: Path, busybox_image: str, step: dict[str, Any], registry: Registry,  # noqa: F811
        docker_client: docker.DockerClient) -> None:
    """The staging tag is the run's own. The same run pushing the same image again (act
    numbers every run 1) is fine; another image under an existing staging tag refuses the
    push rather than moving the tag: exit 3, reported, the tag unmoved."""
    text = f"""\
    version: 1
    image: {{repository: {registry.host}/immu-it/staging}}
    tests:
      unit: {{command: [sh, -c, "cp /fixtures/it.xml /immu/results/"]}}
    """
    spec = write_project(tmp_path, busybox_image, text, marker="first")
    assert main(["run", "-f", str(spec), "--push"]) == 0
    first = outputs(step["output"])["digest"]
    tag = f"immu-staging-{SHA}-77.1"
    assert registry.client().head_manifest("immu-it/staging", tag) == first
    step["output"].unlink()
    assert main(["run", "-f", str(spec), "--push"]) == 0  # the very same image: idempotent
    assert outputs(step["output"])["digest"] == first
    step["output"].unlink()
    step["emu"].state.check_runs.clear()
    step["emu"].state.statuses.clear()
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("echo first", "echo second"))
    assert main(["run", "-f", str(spec), "--push"]) == 3
    got = reported(step, headline="push refused", state="failure")
    assert "a push never moves a tag" in got["out"]["error"], got["out"]
    assert registry.client().head_manifest("immu-it/staging", tag) == first
    assert_clean(docker_client)


def test_a_suite_that_wrote_no_junit_fails_the_run(
        tmp_path: Path, busybox_image: str, step: dict[str, Any],
        docker_client: docker.DockerClient) -> None:
    """Exit 0 with JUnit written elsewhere (a wrong --junitxml path) is not a green run."""
    spec = write_project(tmp_path, busybox_image, """\
    version: 1
    image: {repository: local/immu-it/no-junit}
    tests:
      unit: {command: [sh, -c, "cp /fixtures/it.xml /tmp/"]}
    """)
    assert main(["run", "-f", str(spec), "--no-push"]) == 1
    out = outputs(step["output"])
    assert out["conclusion"] == "failure" and out["passed"] == "0", out
    (run,) = step["emu"].state.check_runs.values()
    assert "no test case was found" in run["output"]["summary"], run["output"]["summary"]
    assert step["emu"].state.statuses_for(SHA)["immu"] == "failure"
    assert_clean(docker_client)


def test_a_shard_that_builds_itself_warns_outside_the_builds_fence(
        tmp_path: Path, busybox_image: str, step: dict[str, Any],
        docker_client: docker.DockerClient, capsys: pytest.CaptureFixture[str]) -> None:
    """The stored durations are asked before the build's log group (fenced: nothing printed
    inside can issue a command) opens, so their warning stays an annotation."""
    spec = write_project(tmp_path, busybox_image, """\
    version: 1
    image: {repository: 127.0.0.1:9/immu-it/shard-warn}
    tests:
      unit: {command: ["true"], junit: false}
    promote: {branches: [main], tags: [latest]}
    """)
    assert main(["run", "-f", str(spec), "--no-push", "--shard", "1", "--shards", "2"]) == 0
    err = capsys.readouterr().err
    warned = [line for line in obeyed(err) if "no stored durations" in line]
    assert warned and warned[0].startswith("::warning title=immu%3A shards::"), obeyed(err)
    assert_clean(docker_client)


def test_a_failed_run_still_says_where_its_time_went(
        tmp_path: Path, busybox_image: str, docker_client: docker.DockerClient,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``--json`` of a failed run carries ``timings`` beside the error, and the log its
    ``timings:`` line, as a run that ended does."""
    (tmp_path / "Dockerfile").write_text(f"FROM {busybox_image}\nRUN sleep 1 && exit 3\n")
    spec = write_project(tmp_path, busybox_image, """\
    version: 1
    image: {repository: local/immu-it/timed-failure}
    tests:
      unit: {command: ["true"], junit: false}
    """)
    (tmp_path / "Dockerfile").write_text(f"FROM {busybox_image}\nRUN sleep 1 && exit 3\n")
    assert main(["run", "-f", str(spec), "--no-push", "--json"]) == 2
    out, err = capsys.readouterr()
    got = json.loads(out)
    assert got["error"]["type"] == "BuildFailed" and got["exit_code"] == 2
    assert got["timings"]["stages"]["build"] >= 1.0, got["timings"]
    assert re.search(r"^timings: build \d+\.\ds; ", err, re.M), err
    assert_clean(docker_client)
