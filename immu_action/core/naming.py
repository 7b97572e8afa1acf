"""Names ``immu.yml`` gives to things: repositories, image references, DNS aliases, tag templates.

Each ``check_*`` returns ``None`` when the value is valid, else ``(what is wrong, what would be
valid)``. The grammars follow the OCI distribution spec and Docker's reference parser, except
that a first component is a registry host only with a ``.``, a ``:`` or as ``localhost``, so
``Acme/shop`` is reported as "must be lowercase" instead of silently becoming a host.
"""

from __future__ import annotations

import re
import string

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_PATH = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:(?:localhost|{_DOMAIN_PART}(?:\.{_DOMAIN_PART})+)(?::[0-9]+)?|{_DOMAIN_PART}:[0-9]+)"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
_DIGEST = r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}"

REPOSITORY_PATTERN = rf"^(?:{_HOST}/)?{_PATH}$"
"""A repository without tag or digest: ``[host[:port]/]path``, as a JSON Schema pattern."""
IMAGE_PATTERN = rf"^(?:{_HOST}/)?{_PATH}(?::{_TAG})?(?:@{_DIGEST})?$"
"""An image reference ``repository[:tag][@digest]``, as a JSON Schema pattern."""
DNS_LABEL_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
"""A service or suite name: one DNS label, since each becomes an alias on the test network."""
TAG_PATTERN = rf"^{_TAG}$"
"""A tag (OCI distribution spec): the one definition, used by every check of a tag."""
PATH_PATTERN = rf"^{_PATH}$"
"""A repository path without host: lowercase components joined by ``.``, ``_``, ``__``, ``-``."""

PLACEHOLDERS = ("version", "major", "minor", "patch", "sha", "short_sha", "branch")
"""Placeholders a tag template may use; ``core.tags`` fills them from the git ref."""
TEMPLATE_PATTERN = r"^(?![.-])(?:[A-Za-z0-9._-]|\{(?:" + "|".join(PLACEHOLDERS) + r")\})+$"
"""Tag templates for the JSON Schema: literal tag characters and known placeholders."""

SECRET_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,128}$"
"""A BuildKit secret id (``RUN --mount=type=secret,id=...``)."""
CACHE_REF_PATTERN = rf"^(?:off|(?:{_HOST}/)?{_PATH}:{_TAG})$"
"""A build cache reference ``repository:tag``, or ``off``."""

MAX_REPOSITORY = 255
Problem = tuple[str, str]


def _split_host(value: str) -> tuple[str | None, str]:
    """``(host, path)``; the first component is a host only if it looks like one."""
    first, sep, rest = value.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, value


def check_repository(value: str) -> Problem | None:
    """A repository to push to: ``[host[:port]/]path`` with lowercase components, no tag."""
    valid = "like registry.example.com/team/app or localhost:5000/app"
    if "@" in value:
        return f"`{value}` has a digest", f"a repository without digest, {valid}"
    _, path = _split_host(value)
    if ":" in path:
        return f"`{value}` has a tag", f"no tag; tags go under promote.tags; {valid}"
    if path != path.lower():
        return f"`{value}` must be lowercase", f"did you mean `{value.lower()}`?"
    if len(value) > MAX_REPOSITORY:
        return f"repository is {len(value)} characters long", f"at most {MAX_REPOSITORY}"
    if not re.match(REPOSITORY_PATTERN, value):
        return (f"`{value}` is not a valid repository",
                f"{valid}; path components are [a-z0-9] joined by `.`, `_`, `__` or `-`")
    return None


def check_image(value: str) -> Problem | None:
    """An image reference for a service: ``repository[:tag][@digest]``."""
    _, path = _split_host(value.split("@", 1)[0])
    name = path.split(":", 1)[0]
    if name != name.lower():
        return f"`{value}` must be lowercase", "repository names are lowercase, like postgres:16"
    if not re.match(IMAGE_PATTERN, value):
        return (f"`{value}` is not a valid image reference",
                "repository[:tag][@sha256:digest], like postgres:16 or localhost:5000/db:1")
    return None


def check_dns_label(value: str) -> Problem | None:
    """A service or suite name: lowercase letters, digits and inner dashes, at most 63."""
    valid = ("lowercase letters, digits and inner dashes, at most 63 characters, like `db`; "
             "it becomes a network alias")
    if len(value) > 63:
        return f"name `{value[:20]}...` is {len(value)} characters long", valid
    if not re.match(DNS_LABEL_PATTERN, value):
        return f"name `{value}` is not a valid DNS label", valid
    return None


def check_tag_template(value: str) -> Problem | None:
    """A tag template: literal tag characters plus ``{placeholder}``s that can yield a valid tag."""
    known = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
    try:
        parsed = list(string.Formatter().parse(value))
    except ValueError as e:
        return f"template `{value}` is malformed: {e}", f"placeholders are {known}"
    sample = []
    for literal, field, spec, conversion in parsed:
        sample.append(literal)
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            return f"template `{value}` uses unknown placeholder `{{{field}}}`", f"use {known}"
        if spec or conversion:
            return f"template `{value}` formats `{{{field}}}`", f"plain placeholders, {known}"
        sample.append("0")  # every placeholder yields at least one tag character
    if not re.match(TAG_PATTERN, "".join(sample)):
        return (f"template `{value}` can never be a valid tag",
                "tags are [A-Za-z0-9_] then up to 127 of [A-Za-z0-9._-]")
    return None


def check_secret_id(value: str) -> Problem | None:
    """A build secret id: letters, digits, ``_``, ``.``, ``-`` (as BuildKit takes them)."""
    if re.match(SECRET_ID_PATTERN, value):
        return None
    return (f"secret id `{value}` is not valid",
            "letters, digits, `_`, `.` and `-`, like `pip_token`; the Dockerfile names it in "
            "RUN --mount=type=secret,id=...")


def check_cache_ref(value: str) -> Problem | None:
    """A build cache reference (``registry/repo:tag``) or ``off``."""
    if re.match(CACHE_REF_PATTERN, value):
        return None
    return (f"`{value}` is not a cache reference",
            "repository:tag, like registry.example.com/team/app:buildcache, or off")
