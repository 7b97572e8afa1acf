"""Which promoted tags may move, whether a release may move them, and the refusal when an
immutable one would (pure).

The rule (as docker/metadata-action users expect, plus "never backwards"):

- A tag template is *exact* when it pins one build: it uses ``{version}``, ``{patch}``,
  ``{sha}`` or ``{short_sha}``. Exact tags are immutable: once written they never point at
  another digest (a re-run with a different digest is refused).
- Every other template is *floating*: ``{major}``, ``{major}.{minor}``, ``{branch}`` and
  literal names such as ``latest``. Floating tags move to each new promotion.
- On a release (a semver git tag), a floating tag only moves *forward*: it moves when no
  release already in the registry that renders the same tag is higher than this one. With
  ``1.3.0`` released, a patch ``v1.2.2`` moves ``1.2`` but leaves ``1`` and ``latest`` on
  ``1.3.0``. The release history is read from the registry's exact version tags (those
  rendered by a template holding ``{version}``, or ``{major}``, ``{minor}`` and ``{patch}``).
  ``promote.floating: newest`` lets floating tags follow the newest release instead.
- ``promote.mutable`` may list templates (or rendered tags) to make mutable on top.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from immu_action.core.tags import RefInfo, render_tags, semver, template_fields
from immu_action.errors import PolicyRefused

FloatingRule = Literal["highest", "newest"]
FLOATING_RULES: tuple[FloatingRule, ...] = ("highest", "newest")
EXACT_FIELDS = frozenset({"version", "patch", "sha", "short_sha"})
_VERSION_CORE = r"(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)"
_FIELD_PATTERNS = {"version": rf"{_VERSION_CORE}(?:-[0-9A-Za-z.-]+)?",
                   "major": r"0|[1-9]\d*", "minor": r"0|[1-9]\d*", "patch": r"0|[1-9]\d*"}

Version = tuple[int, int, int]


def is_exact(template: str) -> bool:
    """True when ``template`` pins one build (immutable), False when it floats."""
    try:
        return bool(EXACT_FIELDS & set(template_fields(template)))
    except ValueError:
        return True  # a malformed template never renders; treat it as the safe kind


def mutable_tags(pairs: Iterable[tuple[str, str]], extra: Collection[str]) -> set[str]:
    """Rendered tags that may move: floating templates, plus those ``extra`` names
    (``promote.mutable``: templates or rendered tags)."""
    return {tag for tag, template in pairs
            if not is_exact(template) or template in extra or tag in extra}


def _history_pattern(template: str) -> re.Pattern[str] | None:
    """A regex matching what ``template`` renders for any release, or None when the template
    does not pin a full version (so its tags cannot tell the release history)."""
    fields = set(template_fields(template))
    if "version" not in fields and not {"major", "minor", "patch"} <= fields:
        return None
    if fields - set(_FIELD_PATTERNS):
        return None  # also {sha}: not one tag per version
    out, pos = "", 0
    for m in re.finditer(r"\{(\w+)\}", template):
        name = m.group(1)
        out += re.escape(template[pos:m.start()]) + f"(?P<{name}>{_FIELD_PATTERNS[name]})"
        pos = m.end()
    return re.compile(out + re.escape(template[pos:]) + "$")


def released_versions(tag_names: Iterable[str], templates: Sequence[str]) -> list[str]:
    """Release versions (``1.2.3``, never pre-releases) the registry's tags show."""
    patterns = [p for p in map(_history_pattern, templates) if p is not None]
    found: set[str] = set()
    for name in tag_names:
        for pattern in patterns:
            m = pattern.fullmatch(name)
            if not m:
                continue
            parts = m.groupdict()
            text = parts.get("version") or f"{parts['major']}.{parts['minor']}.{parts['patch']}"
            if semver(text) is not None and "-" not in text:
                found.add(text)
    return sorted(found, key=lambda v: semver(v) or (0, 0, 0))


@dataclass(frozen=True, kw_only=True)
class HeldBack:
    """A floating tag a release does not move, and why."""

    tag: str
    stays_on: str  # the higher released version that keeps it
    reason: str


def held_back(pairs: Sequence[tuple[str, str]], *, version: str, sha: str,
              released: Iterable[str], rule: FloatingRule = "highest") -> list[HeldBack]:
    """Floating tags of this release (``version``) that a higher release keeps where they are."""
    new = semver(version)
    if rule == "newest" or new is None:
        return []
    higher = [v for v in released if (semver(v) or (0, 0, 0)) > new]
    out = []
    for tag, template in pairs:
        if is_exact(template):
            continue
        keepers = [v for v in higher
                   if tag in render_tags([template], RefInfo(sha=sha, git_tag=v)).tags]
        if keepers:
            top = max(keepers, key=lambda v: semver(v) or (0, 0, 0))
            out.append(HeldBack(tag=tag, stays_on=top, reason=(
                f"`{tag}` stays on {top}: {version} is older, and floating tags only move "
                "forward (promote.floating: newest makes them follow the newest release)")))
    return out


def check_immutable(current: Sequence[tuple[str, str | None, str | None]], digest: str,
                    mutable: Collection[str], action: str) -> None:
    """Refuse (before any write) when an immutable tag would move: ``current`` holds
    (reference, tag, the digest it points at now) per target."""
    refused = [f"{ref} points at {now}, wanted {digest}" for ref, tag, now in current
               if now is not None and now != digest and tag not in mutable]
    if refused:
        raise PolicyRefused(f"{action} refused: immutable tag(s) would move: "
                            + "; ".join(refused) + ". Exact tags ({version}, {sha}...) never "
                            "move; floating ones do (--mutable TAG / promote.mutable in "
                            "immu.yml for more).")
