"""Failed test cases -> check-run annotations within GitHub's limits (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from immu_action.core.results import Failure
from immu_action.core.summary import case_name

ANNOTATIONS_PER_REQUEST = 50  # annotations per check-run create/update request
ANNOTATION_TEXT_LIMIT = 64 * 1024  # bytes of an annotation's message / raw_details
ANNOTATION_TITLE_LIMIT = 255  # characters of an annotation's title
FALLBACK_PATH = "immu.yml"  # annotated (line 1) when a failure names no file at all
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Annotation:
    """One check-run annotation, as GitHub's ``output.annotations[]`` wants it."""

    path: str
    start_line: int
    end_line: int
    annotation_level: Literal["notice", "warning", "failure"] = "failure"
    title: str
    message: str
    raw_details: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The JSON object for the check-runs API (raw_details omitted when empty)."""
        body: dict[str, Any] = {
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "annotation_level": self.annotation_level,
            "title": self.title,
            "message": self.message,
        }
        if self.raw_details:
            body["raw_details"] = self.raw_details
        return body


def _bytes_tail(text: str, limit: int) -> str:
    """The last ``limit`` UTF-8 bytes of ``text`` (a trace's useful end), whole characters."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return "[...]\n" + data[-(limit - 6) :].decode(errors="ignore")


def _repo_path(path: str, strip_prefixes: Sequence[str]) -> str:
    for prefix in strip_prefixes:
        if prefix and path.startswith(prefix):
            return path[len(prefix) :].lstrip("/")
    return path.removeprefix("./")


def failure_annotations(
    failures: Sequence[Failure],
    *,
    fallback_path: str = FALLBACK_PATH,
    strip_prefixes: Sequence[str] = (),
) -> list[Annotation]:
    """One failure annotation per failure, within GitHub's limits.

    Location: the failure's file and line (line 1 if only the file is known); with no
    file at all, ``fallback_path`` line 1 (the spec that ran the suite), so every failure
    still shows in the check run. ``strip_prefixes`` turns paths seen inside a container
    (``/app/``) or a runner workspace into repository-relative ones.
    """
    out = []
    for f in failures:
        path = _repo_path(f.file, strip_prefixes) if f.file else fallback_path
        line = f.line if f.file and f.line else 1
        name = case_name(f)
        title = f"{f.suite}: {name}" if f.suite not in name else name
        message = f.message or f"{f.kind} without a message"
        out.append(
            Annotation(
                path=path,
                start_line=line,
                end_line=line,
                title=title[:ANNOTATION_TITLE_LIMIT],
                message=_bytes_tail(message, ANNOTATION_TEXT_LIMIT),
                raw_details=_bytes_tail(f.details, ANNOTATION_TEXT_LIMIT),
            )
        )
    return out


def batched(items: Iterable[T], size: int = ANNOTATIONS_PER_REQUEST) -> Iterator[list[T]]:
    """Consecutive lists of at most ``size`` items (50 annotations per API request)."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
