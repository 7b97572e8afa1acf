"""The options of ``immu run``/``test`` as the action passes them: push auto, fail-on, suite
selection, the spec path, the results directory, and the results tar extraction. Each test
fails when its behaviour is removed (issue 9's mutation audit found none did)."""

from __future__ import annotations

import argparse
import io
import tarfile
from pathlib import Path

import pytest

from immu_action.adapters.docker.results import _extract_safely
from immu_action.commands import _common as common
from immu_action.core.policy import should_push
from immu_action.core.results import (
    Failure,
    RunResult,
    SuiteResult,
    SuiteStatus,
    TestResults,
    Totals,
)
from immu_action.errors import BadInput


@pytest.mark.parametrize(("event", "fork", "pushed"), [
    ("push", False, True), ("workflow_dispatch", False, True), ("pull_request", False, False),
    ("pull_request_target", False, False), ("pull_request", True, False), ("push", True, False),
    ("schedule", False, False), ("merge_group", False, False),
])
def test_push_auto_pushes_only_for_push_and_dispatch_never_for_prs_or_forks(
        event: str, fork: bool, pushed: bool) -> None:
    assert should_push("auto", event_name=event, is_fork=fork) is pushed
    # a laptop run (no event) pushes only when asked
    assert should_push("auto", event_name=None, is_fork=False) is False
    assert should_push("true", event_name=event, is_fork=fork) is True
    assert should_push("false", event_name=event, is_fork=fork) is False


def _run(*statuses: tuple[SuiteStatus, Totals]) -> RunResult:
    suites = []
    for i, (status, totals) in enumerate(statuses):
        kind = "error" if totals.errors else "failure"
        fails = tuple(Failure(suite=f"s{i}", classname="c", name="t", kind=kind, message="m")
                      for _ in range(totals.failed + totals.errors))
        suites.append(SuiteResult(name=f"s{i}", status=status, exit_code=0, duration_s=0.0,
                                  results=TestResults(totals=totals, failures=fails)))
    return RunResult(image_id="sha256:x", repository="r", suites=tuple(suites))


GREEN = (SuiteStatus.PASSED, Totals(tests=2, passed=2))
FAILED = (SuiteStatus.FAILED, Totals(tests=2, passed=1, failed=1))
ERRORED = (SuiteStatus.ERROR, Totals(tests=2, passed=1, errors=1))


@pytest.mark.parametrize(("run", "failures", "errors", "nothing"), [
    (_run(GREEN), 0, 0, 0), (_run(GREEN, FAILED), 1, 0, 0), (_run(GREEN, ERRORED), 1, 1, 0),
    (_run(), 1, 0, 0),  # no test case at all is not a pass
])
def test_fail_on_decides_the_exit_code(run: RunResult, failures: int, errors: int,
                                       nothing: int) -> None:
    assert common.exit_code(run, "failures") == failures
    assert common.exit_code(run, "errors") == errors
    assert common.exit_code(run, "nothing") == nothing


def test_fail_on_comes_from_the_flag_then_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMMU_FAIL_ON", "errors")
    assert common.fail_on(argparse.Namespace(fail_on=None)) == "errors"
    assert common.fail_on(argparse.Namespace(fail_on="nothing")) == "nothing"
    monkeypatch.setenv("IMMU_FAIL_ON", "sometimes")
    with pytest.raises(BadInput, match=r"IMMU_FAIL_ON=.sometimes.*failures, errors, nothing"):
        common.fail_on(argparse.Namespace(fail_on=None))


@pytest.mark.parametrize(("env", "flags", "chosen"), [
    ("all", None, None), ("", None, None), ("unit", None, ["unit"]),
    ("unit, integration", None, ["unit", "integration"]), ("unit integration", None,
                                                             ["unit", "integration"]),
    ("unit", ["e2e"], ["e2e"]),  # the flag wins over the environment
])
def test_suites_come_from_the_flag_then_immu_suites(
        monkeypatch: pytest.MonkeyPatch, env: str, flags: list[str] | None,
        chosen: list[str] | None) -> None:
    monkeypatch.setenv("IMMU_SUITES", env)
    assert common.suites_from(argparse.Namespace(suites=flags)) == chosen


def test_the_spec_path_comes_from_the_flag_then_immu_spec(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    text = "version: 1\nimage: {repository: a/%s}\ntests: {u: {command: x}}\n"
    (tmp_path / "other.yml").write_text(text % "other")
    (tmp_path / "flag.yml").write_text(text % "flag")
    monkeypatch.setenv("IMMU_SPEC", str(tmp_path / "other.yml"))
    assert common.spec_from(argparse.Namespace(file="immu.yml")).image.repository == "a/other"
    chosen = common.spec_from(argparse.Namespace(file=str(tmp_path / "flag.yml")))
    assert chosen.image.repository == "a/flag"


def test_the_results_dir_flag_wins_over_the_default_next_to_the_spec(tmp_path: Path) -> None:
    from immu_action.spec import validate_text

    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    loaded, problems = validate_text("version: 1\nimage: {repository: a/b}\n"
                                     "tests: {u: {command: x}}\n", path=tmp_path / "immu.yml")
    assert loaded is not None and problems == []
    default = common.results_root(argparse.Namespace(results_dir=None), loaded)
    assert default == tmp_path.resolve() / ".immu" / "results"
    chosen = common.results_root(argparse.Namespace(results_dir=str(tmp_path / "r")), loaded)
    assert chosen == (tmp_path / "r").resolve()


def _tar(*members: tuple[str, bytes | None, str | None]) -> tarfile.TarFile:
    """A tar as ``docker cp`` sends it: ``results/...`` entries; data None = a directory,
    a link target = a symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return tarfile.open(fileobj=buf, mode="r")


def test_results_extraction_keeps_files_and_refuses_escapes_and_links(tmp_path: Path) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    tar = _tar(("results", None, None), ("results/unit.xml", b"<testsuite/>", None),
               ("results/sub/deep.xml", b"<deep/>", None),
               ("results/../outside", b"escaped", None), ("/etc/evil", b"abs", None),
               ("results/link.xml", None, "/etc/passwd"),
               ("results/sub/../../up.xml", b"up", None))
    _extract_safely(tar, dest)
    got = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    assert got == ["sub", "sub/deep.xml", "unit.xml"], got
    assert (dest / "unit.xml").read_bytes() == b"<testsuite/>"
    assert not outside.exists() and not (tmp_path / "up.xml").exists()
    assert not (dest / "link.xml").is_symlink()
