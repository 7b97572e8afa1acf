"""Refuse XML that declares entities, before the C parser sees it (defusedxml semantics).

Entity expansion (billion laughs) and external entities (``<!ENTITY x SYSTEM "file:...">``)
both need an internal DTD subset: ``<!DOCTYPE root [ ... ]>``. Such a subset can only
sit in the prolog, before the root element, so reading the head of the file is enough
and the fast C ``iterparse`` keeps its speed. A bare ``<!DOCTYPE root>`` (or one naming
an external DTD, which ElementTree never fetches) is harmless and accepted.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from immu_action.errors import BadInput

_CHUNK = 64 * 1024
_MAX_PROLOG = 1024 * 1024  # comments/PIs longer than this before the root: give up scanning


def _decode(head: bytes) -> str:
    # Markup of the prolog is ASCII; latin-1 never fails. UTF-16 needs its BOM (XML 1.0 §4.3.3).
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="replace")
    return head.removeprefix(b"\xef\xbb\xbf").decode("latin-1")


def _declaration(text: str, j: int) -> tuple[str, int]:
    """Scan ``<!DOCTYPE ...`` from ``j``: ``("subset", k)``, ``("end", k)`` or ``("more", 0)``.

    Quotes are honoured: ``SYSTEM "a>b" [`` must not hide the subset behind a quoted ``>``.
    """
    quote = ""
    for k in range(j + 2, len(text)):
        c = text[k]
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "[":
            return "subset", k
        elif c == ">":
            return "end", k
    return "more", 0


def _scan(text: str) -> tuple[str, int]:
    """``("root", i)``, ``("doctype", i)`` with a subset at i, or ``("more", 0)`` (need more)."""
    i = 0
    while True:
        j = text.find("<", i)
        if j < 0:
            return "more", 0
        if text.startswith("<?", j):
            end, skip = text.find("?>", j), 2
        elif text.startswith("<!--", j):
            end, skip = text.find("-->", j + 4), 3
        elif text.startswith("<!", j):
            verdict, end = _declaration(text, j)
            if verdict == "subset":
                return "doctype", j
            end, skip = (end, 1) if verdict == "end" else (-1, 0)
        else:
            return "root", j
        if end < 0:
            return "more", 0
        i = end + skip


def check_prolog(fh: BinaryIO, source: Path) -> None:
    """Raise ``BadInput`` if the document declares a DTD subset or entities."""
    head = b""
    while True:
        if len(head) >= _MAX_PROLOG:
            raise BadInput(
                f"{source}: refused: more than {_MAX_PROLOG // 1024} KiB before the root "
                "element (a JUnit report starts with <testsuites> or <testsuite>)"
            )
        chunk = fh.read(_CHUNK)
        head += chunk
        verdict, at = _scan(_decode(head))
        if verdict == "root":
            return
        if verdict == "doctype":
            subset = _decode(head)[at:]
            what = (
                "declares entities (<!ENTITY)"
                if "<!ENTITY" in subset.upper()
                else ("has an internal DTD subset (<!DOCTYPE ... [ ... ]>)")
            )
            raise BadInput(
                f"{source}: refused: the XML {what}, which enables entity-expansion and "
                "external-entity attacks; JUnit reports never need a DTD: remove it"
            )
        if not chunk:
            return  # no root at all: the parser reports the precise error
