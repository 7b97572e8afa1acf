"""Tag names: validation and rendering of tag templates from a git ref (pure).

Placeholders: ``{version} {major} {minor} {patch}`` from a semver git tag (``v1.2.3`` or
``1.2.3``), ``{sha} {short_sha}`` from the commit, ``{branch}`` from a branch ref.

The pre-release rule: a pre-release (``v1.3.0-rc.1``) renders ``{version}``
(``1.3.0-rc.1``) but never a *floating* tag: a template with
``{major}`` or ``{minor}``, and the literal floating names in ``FLOATING`` (``latest``,
``stable``), are skipped for it so that a release candidate never moves what users pull.
A template that cannot render for the ref is skipped with a reason, never a crash.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from immu_action.core import naming

TAG_PATTERN = re.compile(naming.TAG_PATTERN)
PLACEHOLDERS = frozenset({"version", "major", "minor", "patch", "sha", "short_sha", "branch"})
FLOATING = frozenset({"latest", "stable"})
_SEMVER = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+(?P<build>[0-9A-Za-z.-]+))?$")
_SHA = re.compile(r"^[0-9a-f]{7,64}$")


@dataclass(frozen=True, kw_only=True)
class RefInfo:
    """What a git ref offers to templates: a branch or a tag name, and the commit."""

    sha: str
    branch: str | None = None
    git_tag: str | None = None


@dataclass(frozen=True, kw_only=True)
class Rendered:
    """Outcome of tag rendering: tags to write, and templates skipped with their reason."""

    tags: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    pairs: tuple[tuple[str, str], ...] = ()  # (tag, the template it came from), in order


def semver(text: str) -> tuple[int, int, int] | None:
    """``(major, minor, patch)`` of ``v1.2.3``/``1.2.3`` (pre-releases too), else None."""
    m = _SEMVER.match(text)
    return (int(m["major"]), int(m["minor"]), int(m["patch"])) if m else None


def tag_problem(tag: str) -> str | None:
    """Why ``tag`` is not a valid OCI tag, or None when it is."""
    if TAG_PATTERN.match(tag):
        return None
    return (f"tag {tag!r} is invalid: it must match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}} "
            "(letters, digits, '_', '.', '-'; not starting with '.' or '-'; at most 128)")


def sanitise_branch(branch: str) -> str:
    """A branch name as a tag part: keep case, invalid chars -> '-', trimmed to 128."""
    name = branch.removeprefix("refs/heads/")
    name = re.sub(r"[^A-Za-z0-9._-]", "-", name)
    name = re.sub(r"^[.-]+", "", name)[:128]
    return name.rstrip("-.") or "_"


def ref_info(ref: str, sha: str) -> RefInfo:
    """``refs/heads/x`` -> branch x; ``refs/tags/v1`` -> tag v1; a bare name is a branch."""
    if ref.startswith("refs/tags/"):
        return RefInfo(sha=sha, git_tag=ref.removeprefix("refs/tags/"))
    return RefInfo(sha=sha, branch=ref.removeprefix("refs/heads/") or None)


def _values(info: RefInfo) -> tuple[dict[str, str], dict[str, str], bool]:
    """Placeholder values, reasons for missing ones, and whether this is a pre-release."""
    values: dict[str, str] = {}
    missing: dict[str, str] = {}
    if _SHA.match(info.sha):
        values["sha"], values["short_sha"] = info.sha, info.sha[:7]
    else:
        missing["sha"] = missing["short_sha"] = f"commit {info.sha!r} is not a hex sha"
    if info.branch:
        values["branch"] = sanitise_branch(info.branch)
    else:
        missing["branch"] = "the ref is not a branch"
    semver = _SEMVER.match(info.git_tag or "")
    prerelease = bool(semver and semver.group("pre"))
    if semver:
        core = f"{semver['major']}.{semver['minor']}.{semver['patch']}"
        values["version"] = core + (f"-{semver['pre']}" if prerelease else "")
        values["patch"] = semver["patch"]
        if prerelease:
            reason = f"{info.git_tag} is a pre-release: no floating major/minor tags"
            missing["major"] = missing["minor"] = reason
        else:
            values["major"], values["minor"] = semver["major"], semver["minor"]
    else:
        why = (f"git tag {info.git_tag!r} is not semver (v1.2.3)" if info.git_tag
               else "the ref is not a semver git tag")
        for key in ("version", "major", "minor", "patch"):
            missing[key] = why
    return values, missing, prerelease


def template_fields(template: str) -> list[str]:
    """Placeholder names used by ``template``; raises ValueError on bad braces."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def render_tags(templates: tuple[str, ...] | list[str], info: RefInfo) -> Rendered:
    """Render each template for ``info``; skip (with a reason) what cannot render."""
    values, missing, prerelease = _values(info)
    tags: list[str] = []
    pairs: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    for template in templates:
        try:
            fields = template_fields(template)
        except ValueError as e:
            skipped.append((template, f"bad template: {e}"))
            continue
        unknown = [f for f in fields if f not in PLACEHOLDERS]
        absent = [f for f in fields if f in missing]
        if unknown:
            skipped.append((template, f"unknown placeholder {{{unknown[0]}}}; known: "
                            + ", ".join(sorted(PLACEHOLDERS))))
        elif absent:
            skipped.append((template, missing[absent[0]]))
        elif prerelease and not fields and template in FLOATING:
            skipped.append((template, f"{info.git_tag} is a pre-release: {template} not moved"))
        else:
            tag = template.format(**{f: values[f] for f in fields})
            problem = tag_problem(tag)
            if problem:
                skipped.append((template, problem))
            elif tag not in tags:
                tags.append(tag)
                pairs.append((tag, template))
    return Rendered(tags=tuple(tags), skipped=tuple(skipped), pairs=tuple(pairs))
