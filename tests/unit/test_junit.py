"""JUnit parsing: real dialects, locations, limits, and every bad-input path."""

from __future__ import annotations

from pathlib import Path

import pytest

from immu_action.core.junit import DETAILS_LIMIT, junit_files, parse_junit, parse_paths
from immu_action.core.locate import frames, locate
from immu_action.errors import BadInput

FIXTURES = Path(__file__).parent.parent / "fixtures" / "junit"
BAD = FIXTURES / "bad"

# file -> (tests, passed, failed, errors, skipped, duration_s)
TOTALS = {
    "pytest_xunit1.xml": (5, 2, 1, 1, 1, 0.01),
    "pytest_xunit2.xml": (4, 2, 1, 0, 1, 0.347),
    "jest_junit.xml": (5, 3, 1, 0, 1, 0.018),
    "mocha_junit.xml": (4, 3, 1, 0, 0, 0.029),
    "surefire.xml": (5, 2, 1, 1, 1, 0.267),
    "go_junit_report.xml": (4, 1, 1, 1, 1, 0.001),
    "gotestsum.xml": (3, 2, 1, 0, 0, 0.011),
    "bazel_test.xml": (1, 0, 0, 1, 0, 3.0),
    "googletest.xml": (3, 1, 1, 0, 1, 0.001),
    "nested_suites.xml": (4, 2, 1, 1, 0, 1.0),
    "missing_attributes.xml": (6, 4, 1, 1, 0, 0.0),
    "entities.xml": (2, 1, 1, 0, 0, 0.003),
    "suite_errors.xml": (3, 1, 0, 2, 0, 0.002),
}

# file -> [(suite, classname, name, kind, message start, file, line)]
Expected = tuple[str, str, str, str, str, str | None, int | None]
FAILURES: dict[str, list[Expected]] = {
    "suite_errors.xml": [
        (
            "src/broken.test.js",
            "src/broken.test.js",
            "src/broken.test.js (suite)",
            "error",
            "the suite reports 1 failed or errored test(s) but contains no test case",
            None,
            None,
        ),
        (
            "db.migrations",
            "db.migrations",
            "db.migrations (suite)",
            "error",
            "could not connect to db:5432",
            "/app/tests/conftest.py",
            14,
        ),
    ],
    "pytest_xunit1.xml": [
        (
            "pytest",
            "tests.test_cart",
            "test_add_item",
            "failure",
            "AssertionError: assert 2 == 3\n +  where",
            "tests/test_cart.py",
            17,
        ),
        # the file attribute wins; no frame in that file, so the (0-based) line attribute
        (
            "pytest",
            "tests.test_cart",
            "test_discount",
            "error",
            'failed on setup with "psycopg',
            "tests/test_cart.py",
            19,
        ),
    ],
    "pytest_xunit2.xml": [
        (
            "pytest",
            "tests.test_api.TestOrders",
            "test_create_order",
            "failure",
            "KeyError: 'id'",
            "/app/shop/orders.py",
            88,
        ),
    ],
    "jest_junit.xml": [
        (
            "src/cart.test.js",
            "Cart applies a discount",
            "Cart applies a discount",
            "failure",
            "Error: expect(received).toBe(expected)",
            "src/cart.test.js",
            21,
        ),
    ],
    "mocha_junit.xml": [
        (
            "Inventory",
            "rejects unknown SKUs",
            "Inventory reserve() rejects unknown SKUs",
            "failure",
            "expected [Function] to throw 'UnknownSku'",
            "/srv/app/test/inventory.spec.js",
            27,
        ),
    ],
    "surefire.xml": [
        (
            "com.acme.shop.OrderServiceTest",
            "com.acme.shop.OrderServiceTest",
            "rejectsNegativeQuantity",
            "failure",
            "expected: <400> but was: <200>",
            "com/acme/shop/OrderServiceTest.java",
            42,
        ),
        (
            "com.acme.shop.OrderServiceTest",
            "com.acme.shop.OrderServiceTest",
            "computesTax",
            "error",
            "java.lang.NullPointerException: Cannot invoke",
            "com/acme/shop/TaxCalculator.java",
            27,
        ),
    ],
    "go_junit_report.xml": [
        (
            "example.com/shop/cart",
            "example.com/shop/cart",
            "TestTotal/with_tax",
            "failure",
            "cart_test.go:41: Total() = 110, want 121",
            "cart_test.go",
            41,
        ),
        (
            "example.com/shop/payments",
            "example.com/shop/payments",
            "[build failed]",
            "error",
            "Build error",
            "payments/client.go",
            19,
        ),
    ],
    "gotestsum.xml": [
        (
            "example.com/shop/stock",
            "example.com/shop/stock",
            "TestRelease",
            "failure",
            "panic: runtime error: index out of range",
            "/src/stock/ledger.go",
            88,
        ),
    ],
    "bazel_test.xml": [
        (
            "//services/checkout:checkout_test",
            "",
            "//services/checkout:checkout_test",
            "error",
            "exited with error code 1",
            None,
            None,
        ),
    ],
    "googletest.xml": [
        (
            "RingBufferTest",
            "RingBufferTest",
            "Wraps",
            "failure",
            "src/ring_buffer_test.cc:24\nExpected equality",
            "src/ring_buffer_test.cc",
            24,
        ),
    ],
    "nested_suites.xml": [
        (
            "integration.db",
            "integration.db",
            "rolls back",
            "failure",
            "table orders still exists",
            None,
            None,
        ),
        ("integration", "integration", "smoke", "error", "timeout after 30s", None, None),
    ],
    "missing_attributes.xml": [
        ("missing_attributes", "", "fails quietly", "failure", "failure", None, None),
        ("missing_attributes", "", "errors quietly", "error", "RuntimeError", None, None),
    ],
    "entities.xml": [
        (
            "R&D <core>",
            "parser",
            "unicode \u2603 snowman",
            "failure",
            "line one\nline two",
            "lib/parser.js",
            12,
        ),
    ],
}


@pytest.mark.parametrize("name", sorted(TOTALS))
def test_totals_of_each_dialect(name: str) -> None:
    totals = parse_junit(FIXTURES / name).totals
    tests, passed, failed, errors, skipped, duration = TOTALS[name]
    assert (totals.tests, totals.passed, totals.failed, totals.errors, totals.skipped) == (
        tests,
        passed,
        failed,
        errors,
        skipped,
    )
    assert totals.duration_s == pytest.approx(duration)


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_failures_of_each_dialect(name: str) -> None:
    got = parse_junit(FIXTURES / name).failures
    assert len(got) == len(FAILURES[name])
    for failure, (suite, classname, case, kind, message, file, line) in zip(
        got, FAILURES[name], strict=True
    ):
        assert (failure.suite, failure.classname, failure.name, failure.kind) == (
            suite,
            classname,
            case,
            kind,
        )
        assert failure.message.startswith(message), failure.message
        assert (failure.file, failure.line) == (file, line)


def test_entities_cdata_and_character_references_are_decoded() -> None:
    (failure,) = parse_junit(FIXTURES / "entities.xml").failures
    assert "expected <a> & got <b> & <c>" in failure.details


def test_flaky_failure_that_passed_on_rerun_counts_as_passed() -> None:
    failures = parse_junit(FIXTURES / "surefire.xml").failures
    assert "retriesPayment" not in {f.name for f in failures}


def test_details_keep_the_tail_of_huge_traces(tmp_path: Path) -> None:
    trace = "".join(f"frame {i}\n" for i in range(20_000)) + "THE END"
    path = tmp_path / "big.xml"
    path.write_text(
        f'<testsuite name="s"><testcase name="t"><failure>{trace}</failure></testcase></testsuite>'
    )
    (failure,) = parse_junit(path).failures
    assert failure.details.endswith("THE END")
    assert failure.details.startswith("[...]")
    assert len(failure.details) <= DETAILS_LIMIT + 10
    assert failure.message == "frame 0"  # no message attribute: the text's first line


def test_many_cases_stream_and_count_once(tmp_path: Path) -> None:
    fail = "<failure message='x'/>"
    cases = "".join(
        f'<testcase name="t{i}" time="0.5">{fail if i % 7 == 0 else ""}</testcase>'
        for i in range(20_000)
    )
    path = tmp_path / "many.xml"
    path.write_text(f"<testsuites><testsuite name='s'>{cases}</testsuite></testsuites>")
    totals = parse_junit(path).totals
    assert (totals.tests, totals.failed, totals.passed) == (20_000, 2858, 17_142)
    assert totals.duration_s == pytest.approx(10_000.0)


def test_garbage_and_locale_times_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "times.xml"
    path.write_text(
        '<testsuite><testcase time="1,000.5"/><testcase time="nan"/><testcase time="inf"/>'
        '<testcase time=""/><testcase time="0.25"/></testsuite>'
    )
    assert parse_junit(path).totals.duration_s == pytest.approx(1000.75)


def test_testcase_with_failure_and_error_counts_once_as_failed(tmp_path: Path) -> None:
    path = tmp_path / "both.xml"
    path.write_text(
        '<testsuite><testcase name="t"><failure message="f"/><error message="e"/>'
        "</testcase></testsuite>"
    )
    results = parse_junit(path)
    assert (results.totals.tests, results.totals.failed, results.totals.errors) == (1, 1, 0)


def test_suite_name_defaults_to_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "unit-results.xml"
    path.write_text(
        '<testsuites><testsuite><testcase name="t"><error/></testcase></testsuite></testsuites>'
    )
    assert parse_junit(path).failures[0].suite == "unit-results"


# --- bad input -----------------------------------------------------------------------------


def _bad(path: Path) -> str:
    with pytest.raises(BadInput) as e:
        parse_junit(path)
    assert str(path) in str(e.value)
    return str(e.value)


def test_not_xml_gives_line_and_column() -> None:
    message = _bad(BAD / "not_xml.xml")
    assert "not well-formed XML at line 5, column 3 (mismatched tag)" in message


def test_empty_file_is_not_xml() -> None:
    assert "not well-formed XML at line 1" in _bad(BAD / "empty.xml")


def test_not_junit_names_root_and_what_is_valid() -> None:
    message = _bad(BAD / "not_junit.xml")
    assert "root element is <coverage>" in message
    assert "<testsuites> or <testsuite>" in message


def test_billion_laughs_is_refused() -> None:
    assert "declares entities (<!ENTITY)" in _bad(BAD / "billion_laughs.xml")


def test_external_entity_is_refused() -> None:
    message = _bad(BAD / "external_entity.xml")
    assert "refused" in message
    assert "root:" not in message  # /etc/passwd was never read


def test_internal_subset_without_entities_is_refused() -> None:
    assert "internal DTD subset" in _bad(BAD / "subset_no_entity.xml")


def test_utf16_billion_laughs_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "utf16.xml"
    path.write_bytes(
        (BAD / "billion_laughs.xml")
        .read_text()
        .replace('version="1.0"', 'version="1.0" encoding="UTF-16"')
        .encode("utf-16")
    )
    assert "refused" in _bad(path)


def test_subset_after_a_long_prolog_is_still_found(tmp_path: Path) -> None:
    path = tmp_path / "long.xml"
    comment = "<!-- " + "x" * 200_000 + " -->\n"
    path.write_text(comment + (BAD / "external_entity.xml").read_text().split("\n", 1)[1])
    assert "refused" in _bad(path)


def test_entity_text_in_a_comment_and_plain_doctype_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "ok.xml"
    path.write_text(
        '<?xml version="1.0"?>\n<!-- <!ENTITY lol "not a declaration"> -->\n'
        '<!DOCTYPE testsuite SYSTEM "junit.dtd">\n<testsuite><testcase name="t"/></testsuite>'
    )
    assert parse_junit(path).totals.passed == 1


def test_missing_file() -> None:
    assert "no such JUnit file" in _bad(FIXTURES / "nope.xml")


def test_unreadable_path(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_text("<testsuite/>")
    assert "cannot read JUnit file" in _bad(tmp_path / "a.xml" / "b.xml")


def test_directory_given_as_file(tmp_path: Path) -> None:
    assert "is a directory" in _bad(tmp_path)


def test_invalid_utf8_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "latin.xml"
    path.write_bytes(b'<?xml version="1.0" encoding="utf-8"?><testsuite name="\xe9"/>')
    assert "not well-formed XML" in _bad(path)


# --- paths ---------------------------------------------------------------------------------


def test_directories_are_searched_recursively_and_sorted(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.xml").write_text('<testsuite><testcase name="x"/></testsuite>')
    (tmp_path / "a.xml").write_text(
        '<testsuite><testcase name="y"><failure/></testcase></testsuite>'
    )
    (tmp_path / "notes.txt").write_text("not junit")
    assert junit_files([tmp_path]) == [tmp_path / "a.xml", tmp_path / "b" / "z.xml"]
    totals = parse_paths([tmp_path]).totals
    assert (totals.tests, totals.failed) == (2, 1)


def test_empty_directory_is_empty_results(tmp_path: Path) -> None:
    assert parse_paths([tmp_path]).totals.tests == 0


def test_missing_path_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such file or directory"):
        parse_paths([tmp_path / "results"])


def test_a_bad_file_in_a_directory_is_named() -> None:
    with pytest.raises(BadInput, match=r"billion_laughs\.xml: refused"):
        parse_paths([FIXTURES])  # bad/ is searched too; its first file (sorted) is refused


# --- locations -----------------------------------------------------------------------------


def test_python_traceback_prefers_deepest_project_frame() -> None:
    text = (
        'Traceback (most recent call last):\n  File "/app/tests/test_x.py", line 10, in test\n'
        '    f()\n  File "/app/shop/x.py", line 3, in f\n    g()\n'
        '  File "/usr/lib/python3/dist-packages/lib.py", line 99, in g\nValueError'
    )
    assert frames(text)[0] == ("/app/shop/x.py", 3)


def test_js_skips_node_modules_and_node_internals() -> None:
    text = (
        "Error: boom\n    at helper (node_modules/lib/index.js:5:1)\n"
        "    at Object.<anonymous> (src/a.test.ts:12:5)\n    at node:internal/x:1:1"
    )
    assert locate(text) == ("src/a.test.ts", 12)


def test_java_skips_jdk_and_junit_frames() -> None:
    text = "\tat org.junit.Assert.fail(Assert.java:89)\n\tat a.b.CTest.m(CTest.java:7)"
    assert locate(text) == ("a/b/CTest.java", 7)


def test_file_attribute_matches_absolute_frame() -> None:
    text = "/home/runner/work/r/r/tests/test_a.py:33: AssertionError"
    assert locate(text, file="tests/test_a.py", line="4") == ("tests/test_a.py", 33)


def test_attribute_line_is_clamped_and_garbage_ignored() -> None:
    assert locate("", file="a.py", line="0") == ("a.py", 1)
    assert locate("", file="a.py", line="twelve") == ("a.py", None)
    assert locate("nothing here") == (None, None)
