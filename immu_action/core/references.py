"""Image references (pure): ``host[:port]/repository[:tag][@digest]`` parsed with the one
grammar of ``core.naming``; Docker Hub's names normalised."""

from __future__ import annotations

import re
from dataclasses import dataclass

from immu_action.core.naming import PATH_PATTERN, TAG_PATTERN
from immu_action.errors import BadInput

DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
"""One registry: API at registry-1.docker.io, credentials under https://index.docker.io/v1/."""
_REPO = re.compile(PATH_PATTERN)
DIGEST_PATTERN = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")


@dataclass(frozen=True, kw_only=True)
class Reference:
    """``host[:port]/repo[:tag][@digest]`` split into its parts."""

    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        text = f"{self.host}/{self.repository}"
        text += f":{self.tag}" if self.tag else ""
        return text + (f"@{self.digest}" if self.digest else "")


def parse_reference(text: str, *, default_host: str | None = None) -> Reference:
    """Parse an image reference; without a host part, ``default_host`` is used."""
    rest, _, digest = text.strip().partition("@")
    if digest and not DIGEST_PATTERN.match(digest):
        raise BadInput(f"{text!r}: digest {digest!r} is not sha256:<64 hex> or sha512:<128 hex>")
    head, _, last = rest.rpartition("/")
    tag = None
    if ":" in last:
        last, tag = last.split(":", 1)
    path = f"{head}/{last}" if head else last
    first, _, remainder = path.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        host, repo = first, remainder
    elif default_host:
        host, repo = default_host, path
    else:
        raise BadInput(f"{text!r}: name the registry host, e.g. registry.example.com/team/app")
    if host.lower() in DOCKER_HUB_HOSTS and "/" not in repo:
        repo = f"library/{repo}"  # Docker Hub's official images: docker.io/alpine
    if not _REPO.match(repo):
        raise BadInput(f"{text!r}: repository {repo!r} must be lowercase path components "
                       "of [a-z0-9] separated by '.', '_', '__', '-' or '/'")
    if tag is not None and not re.match(TAG_PATTERN, tag):
        raise BadInput(f"{text!r}: tag {tag!r} must match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}")
    return Reference(host=host, repository=repo, tag=tag, digest=digest or None)
