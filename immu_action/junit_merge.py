"""Merge the JUnit files of a run into one ``<testsuites>`` document (a release asset).

junitparser does the merging; every input was already parsed (and checked for entity
declarations) by ``core.junit``, so only files that passed that check get here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from junitparser import JUnitXml, TestSuite
from junitparser.junitparser import JUnitXmlError

from immu_action.core.junit import junit_files


def merged_junit(paths: Iterable[Path]) -> bytes | None:
    """One JUnit XML document holding every suite found under ``paths``; None if none."""
    merged = JUnitXml(name="immu")
    found = False
    for path in junit_files(paths):
        try:
            doc = JUnitXml.fromfile(str(path))
        except (JUnitXmlError, OSError, SyntaxError):
            continue  # already reported as a suite error by the parser
        suites = [doc] if isinstance(doc, TestSuite) else list(doc)
        for suite in suites:
            merged.add_testsuite(suite)
            found = True
    if not found:
        return None
    merged.update_statistics()  # type: ignore[no-untyped-call]
    body: bytes = merged.tostring()  # type: ignore[no-untyped-call]
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body
