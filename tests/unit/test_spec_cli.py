"""``immu validate`` and ``immu schema`` through the real CLI entry point and error handler."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from immu_action import cli

SPECS = Path(__file__).parents[1] / "fixtures" / "specs"
# Only this brief's commands: the others are registered by their own modules as they land.
OURS = ("validate", "schema")


@pytest.fixture(autouse=True)
def our_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMANDS", OURS)


@pytest.fixture
def specs(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(SPECS)
    return SPECS


def test_valid_spec_exits_0_with_a_summary(specs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", "-f", "good/full.yml"]) == 0
    out, err = capsys.readouterr()
    assert (out, err) == ("", "good/full.yml: valid: 2 suites, 2 services\n")


def test_valid_spec_json(specs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", "--file", "good/minimal.yml", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"valid": True, "file": "good/minimal.yml", "suites": ["unit"],
                               "services": []}
    assert err == "good/minimal.yml: valid: 1 suite, 0 services\n"


def test_invalid_spec_exits_2_with_every_problem_line(
    specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["validate", "-f", "bad/unknown-keys.yml"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    golden = (specs / "bad" / "unknown-keys.expected").read_text()
    assert err == golden.replace("unknown-keys.yml:", "bad/unknown-keys.yml:")


def test_invalid_spec_json_lists_structured_problems(
    specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["validate", "-f", "bad/mutable.yml", "--json"]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out) == {"valid": False, "file": "bad/mutable.yml", "problems": [{
        "line": 7, "path": "promote.mutable[1]",
        "message": "`stable` is not one of promote.tags "
                   "(list only entries of promote.tags: {version}, latest)"}]}
    assert err.startswith("bad/mutable.yml:7: promote.mutable[1]: `stable`")


def test_default_file_is_immu_yml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["validate"]) == 2
    assert capsys.readouterr().err == (
        "immu: error: immu.yml: no such file (create it, or pass -f PATH)\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "immu.yml").write_text(
        "version: 1\nimage: {repository: a/b}\ntests: {u: {command: x}}\n")
    assert cli.main(["validate"]) == 0


def test_missing_file_with_json_reports_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yml"
    assert cli.main(["validate", "-f", str(missing), "--json"]) == 2
    out, _ = capsys.readouterr()
    assert json.loads(out)["error"]["type"] == "BadInput"


def test_schema_prints_the_shipped_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schema"]) == 0
    out, err = capsys.readouterr()
    shipped = Path(cli.__file__).parent / "spec" / "immu.schema.json"
    assert out == shipped.read_text()
    assert json.loads(out)["title"] == "immu.yml"
    assert err == ""


def test_subprocess_reports_bad_yaml_without_traceback(tmp_path: Path) -> None:
    spec = tmp_path / "immu.yml"
    spec.write_text("version: 1\nimage:\n\trepository: a\n")
    program = ("import sys; from immu_action import cli; "
               f"cli.COMMANDS = {OURS!r}; sys.exit(cli.main())")
    done = subprocess.run([sys.executable, "-c", program, "validate"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr == (
        "immu.yml:3: (yaml): invalid YAML: while scanning for the next token found character "
        "'\\t' that cannot start any token (YAML indents with spaces, never tabs)\n")
    assert done.stdout == ""


_MODULES = """\
import sys
from immu_action import cli
try:
    code = cli.main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(code, sorted(m.rsplit(".", 1)[1] for m in sys.modules
                   if m.startswith("immu_action.commands.") and not m.endswith("._common")))
"""


@pytest.mark.parametrize(("argv", "loaded"), [
    (["schema"], "0 ['schema']"),  # a command: its module alone (the others cost ~10 ms)
    (["-h", "schema"], "0 ['_registry', 'build', 'gc', 'promote', 'report', 'rollback', "
                       "'run', 'schema', 'test', 'trace', 'validate', 'verify']"),
    (["bogus"], "2 ['_registry', 'build', 'gc', 'promote', 'report', 'rollback', 'run', "
                "'schema', 'test', 'trace', 'validate', 'verify']"),
])
def test_a_command_registers_its_own_parser_and_help_or_a_typo_all_of_them(
        argv: list[str], loaded: str) -> None:
    done = subprocess.run([sys.executable, "-I", "-c", _MODULES, *argv], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.stdout.strip().splitlines()[-1] == loaded, done.stdout + done.stderr
