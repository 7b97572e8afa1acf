"""Where did a test fail? ``file:line`` from JUnit attributes and failure text (pure).

Test tools rarely write ``file``/``line`` on a ``<testcase>``, but their failure text
nearly always holds a stack trace. We read the frames of Python (tracebacks and pytest's
``path.py:12: Error`` lines), Java/Kotlin (``at a.b.C.m(C.java:12)``), JavaScript
(``at fn (src/a.test.js:12:5)``), Go (``foo_test.go:12: msg``, panic frames) and C++
(``x_test.cc:24``), keep the ones inside the project (not site-packages, node_modules,
the JDK, GOROOT...) and pick the deepest one: the line where the project's own code failed.
"""

from __future__ import annotations

import re

Location = tuple[str | None, int | None]

# Frames in textual order. Python prints the outermost frame first; Java, JS and Go
# print the innermost first; `_frames` returns every list innermost-first.
# Both Python patterns start with a literal, which `re` finds fast (failures can be many).
_PY_TRACEBACK = re.compile(r'File "([^"\n]+)", line (\d+)')
_PYTEST = re.compile(r"\.py:(\d+): ")  # `tests/test_a.py:12: AssertionError`, path before it
_PY_PATH = re.compile(r"[^\s:]+\.py")
_JAVA = re.compile(
    r"^\s*at (?P<cls>[\w$.]+)\.[\w$<>-]+\((?P<file>[\w$-]+\.(?:java|kt|scala|groovy))"
    r":(?P<line>\d+)\)",
    re.M,
)
_JS = re.compile(
    r"^\s*at (?:[^\n(]*? \()?(?:file://)?(?P<file>[^\s()]+\.(?:[cm]?[jt]sx?|vue|svelte))"
    r":(?P<line>\d+)(?::\d+)?\)?\s*$",
    re.M,
)
_GO = re.compile(r"^\s*(?P<file>[^\s:]+\.go):(?P<line>\d+)(?::| \+0x|$)", re.M)
# googletest/Catch2 failures start with `path/to/x_test.cc:24` (optionally `(24)` on MSVC).
_CPP = re.compile(r"^\s*(?P<file>[^\s:()]+\.(?:cc|cpp|cxx|c|hh|hpp|h))[:(](?P<line>\d+)", re.M)

# Path fragments that mark a frame as outside the project (libraries, runtimes).
_PY_FOREIGN = re.compile(r"site-packages|dist-packages|/lib/python|<frozen|<string>|_pytest/")
_JAVA_FOREIGN = (
    "java.",
    "javax.",
    "jdk.",
    "sun.",
    "com.sun.",
    "kotlin.",
    "scala.",
    "groovy.",
    "org.junit.",
    "junit.",
    "org.opentest4j.",
    "org.apache.maven.",
    "org.gradle.",
    "org.assertj.",
    "org.hamcrest.",
    "org.mockito.",
    "org.springframework.",
    "org.testng.",
)
_JS_FOREIGN = ("node_modules", "node:", "internal/")
_GO_FOREIGN = ("/usr/local/go/", "/go/pkg/mod/", "/src/runtime/", "/src/testing/", "GOROOT")


def _py_frames(text: str) -> list[tuple[str, int]]:
    found: list[tuple[int, str, int]] = []  # (offset, path, line), to restore textual order
    if 'File "' in text:
        found.extend((m.start(), m[1], int(m[2])) for m in _PY_TRACEBACK.finditer(text))
    for m in _PYTEST.finditer(text):
        start = text.rfind("\n", 0, m.start()) + 1  # pytest writes the path at a line start
        path = text[start : m.start()] + ".py"
        if _PY_PATH.fullmatch(path):
            found.append((start, path, int(m[1])))
    found.sort()
    frames = [(path, line) for _, path, line in found if not _PY_FOREIGN.search(path)]
    frames.reverse()
    return frames


def _java_frames(text: str) -> list[tuple[str, int]]:
    frames = []
    for m in _JAVA.finditer(text):
        cls = m["cls"]
        if cls.startswith(_JAVA_FOREIGN):
            continue
        # The package gives the directory; the JUnit never says which source root.
        package = cls.rsplit(".", 1)[0].replace(".", "/") if "." in cls else ""
        frames.append((f"{package}/{m['file']}" if package else m["file"], int(m["line"])))
    return frames


def _js_frames(text: str) -> list[tuple[str, int]]:
    return [
        (m["file"], int(m["line"]))
        for m in _JS.finditer(text)
        if not any(f in m["file"] for f in _JS_FOREIGN)
    ]


def _go_frames(text: str) -> list[tuple[str, int]]:
    return [
        (m["file"], int(m["line"]))
        for m in _GO.finditer(text)
        if not any(f in m["file"] for f in _GO_FOREIGN)
    ]


def _cpp_frames(text: str) -> list[tuple[str, int]]:
    return [(m["file"], int(m["line"])) for m in _CPP.finditer(text)]


_FINDERS = (
    (".py", _py_frames),
    ("at ", _java_frames),
    ("at ", _js_frames),
    (".go:", _go_frames),
    ("", _cpp_frames),
)
_SCAN_LIMIT = 128 * 1024  # of each end of a huge text: the frames are near one end


def frames(text: str) -> list[tuple[str, int]]:
    """Project frames found in ``text``, innermost first (first language that matches)."""
    if len(text) > 2 * _SCAN_LIMIT:  # Java/JS print the innermost frame first, Python last
        text = text[:_SCAN_LIMIT] + "\n" + text[-_SCAN_LIMIT:]
    for needle, finder in _FINDERS:
        if needle not in text:  # cheap gate: most texts are in one language
            continue
        found = finder(text)
        if found:
            return found
    return []


def _same_file(frame_path: str, hint: str) -> bool:
    """A frame may be absolute (``/app/tests/t.py``) where the hint is relative."""
    hint = hint.removeprefix("./")
    return frame_path == hint or frame_path.endswith("/" + hint) or hint.endswith("/" + frame_path)


def _line(value: str | None) -> int | None:
    try:
        line = int(value) if value else None
    except ValueError:
        return None
    # pytest's xunit1 `line` is 0-based; GitHub needs >= 1.
    return max(line, 1) if line is not None else None


def locate(text: str, *, file: str | None = None, line: str | None = None) -> Location:
    """``(file, line)`` of a failure from the testcase's attributes and its text.

    With a ``file`` attribute, the deepest frame in that file gives the line (more
    precise than the ``line`` attribute, which names the test's definition); else the
    deepest project frame; else whatever the attributes say.
    """
    found = frames(text) if text else []
    if file:
        for path, number in found:
            if _same_file(path, file):
                # A relative path is what an annotation needs; either may be absolute.
                return (path if file.startswith("/") else file), number
        return file, _line(line)
    if found:
        return found[0]
    return None, None
