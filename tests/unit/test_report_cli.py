"""``immu report``: output, JSON shape and exit codes, in-process and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from immu_action.cli import main

FIXTURES = Path(__file__).parent.parent / "fixtures" / "junit"
BAD = FIXTURES / "bad"
REPO = Path(__file__).parent.parent.parent
PASSING = '<testsuite name="s"><testcase name="a" time="0.5"/><testcase name="b"/></testsuite>'


def test_markdown_and_exit_1_when_tests_failed(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["report", str(FIXTURES / "surefire.xml"), str(FIXTURES / "gotestsum.xml")])
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("## Test results\n\nFailed: 2 failed, 1 error, 4 passed, 1 skipped")
    assert "rejectsNegativeQuantity" in out and "TestRelease" in out
    assert "`com/acme/shop/OrderServiceTest.java:42`" in out


def test_exit_0_when_everything_passed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ok.xml").write_text(PASSING)
    assert main(["report", str(tmp_path)]) == 0
    assert "Passed: 2 passed of 2 tests in 0.50 s" in capsys.readouterr().out


def test_json_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "ok.xml").write_text(PASSING)
    code = main(["report", "--json", str(FIXTURES / "go_junit_report.xml"), str(tmp_path)])
    payload = json.loads(capsys.readouterr().out)
    assert code == 1
    assert payload["totals"] == {
        "tests": 6,
        "passed": 3,
        "failed": 1,
        "errors": 1,
        "skipped": 1,
        "duration_s": 0.501,
    }
    assert payload["files"] == [
        str(FIXTURES / "go_junit_report.xml"),
        str(tmp_path / "nested" / "ok.xml"),
    ]
    first = payload["failures"][0]
    assert first == {
        "suite": "example.com/shop/cart",
        "classname": "example.com/shop/cart",
        "name": "TestTotal/with_tax",
        "kind": "failure",
        "message": "cart_test.go:41: Total() = 110, want 121",
        "details": "cart_test.go:41: Total() = 110, want 121",
        "file": "cart_test.go",
        "line": 41,
    }


def test_empty_directory_reports_no_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path)]) == 0
    assert "No test cases were found." in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("not_xml.xml", "not well-formed XML at line 5, column 3"),
        ("not_junit.xml", "root element is <coverage>"),
        ("billion_laughs.xml", "refused"),
        ("external_entity.xml", "refused"),
        ("empty.xml", "not well-formed XML"),
        ("missing.xml", "no such file or directory"),
    ],
)
def test_bad_input_exits_2_naming_the_file(
    name: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["report", str(BAD / name)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert f"{BAD / name}" in captured.err and expected in captured.err
    assert "Traceback" not in captured.err


def test_bad_input_with_json_is_one_error_object(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["report", "--json", str(BAD / "not_junit.xml")])
    payload = json.loads(capsys.readouterr().out)
    assert code == 2
    assert payload["exit_code"] == 2
    assert payload["error"]["type"] == "NotJUnit"  # a BadInput: exit 2
    assert "not_junit.xml" in payload["error"]["message"]


def _immu(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "immu_action", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def test_subprocess_json_and_exit_code() -> None:
    proc = _immu("report", "--json", str(FIXTURES / "pytest_xunit1.xml"))
    assert proc.returncode == 1, proc.stderr
    payload = json.loads(proc.stdout)
    assert payload["totals"]["failed"] == 1 and payload["totals"]["errors"] == 1
    assert [f["line"] for f in payload["failures"]] == [17, 19]


def test_subprocess_bad_input_has_no_traceback() -> None:
    proc = _immu("report", str(BAD / "billion_laughs.xml"), str(FIXTURES / "jest_junit.xml"))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "billion_laughs.xml: refused" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_subprocess_usage_error_exits_2() -> None:
    proc = _immu("report")
    assert proc.returncode == 2
    assert "PATH" in proc.stderr and "Traceback" not in proc.stderr
