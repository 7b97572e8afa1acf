"""OCI image labels computed from git facts (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True, kw_only=True)
class GitFacts:
    """What git (or the CI environment) says about the source being built."""

    sha: str | None = None
    remote_url: str | None = None
    version: str | None = None
    dirty: bool = False
    commit_time: datetime | None = None


_SCP_LIKE = re.compile(r"^(?:[\w.-]+@)?([\w.-]+):(?!//)(.+)$")


def source_url(remote: str | None) -> str | None:
    """A browsable https URL for a git remote, never with credentials in it."""
    if not remote:
        return None
    remote = remote.strip()
    m = _SCP_LIKE.match(remote)
    if m and "://" not in remote:
        host, path = m.groups()
        remote = f"https://{host}/{path}"
    parts = urlsplit(remote)
    if parts.scheme not in ("http", "https", "ssh", "git"):
        return None
    host = parts.hostname or ""
    if parts.port and parts.scheme in ("http", "https"):
        host = f"{host}:{parts.port}"
    path = parts.path[:-4] if parts.path.endswith(".git") else parts.path
    scheme = parts.scheme if parts.scheme in ("http", "https") else "https"
    return urlunsplit((scheme, host, path, "", ""))


def oci_labels(facts: GitFacts, *, created: datetime) -> dict[str, str]:
    """``org.opencontainers.image.*`` labels: revision, source, created, version."""
    labels = {"org.opencontainers.image.created": _rfc3339(created)}
    if facts.sha:
        labels["org.opencontainers.image.revision"] = facts.sha
    url = source_url(facts.remote_url)
    if url:
        labels["org.opencontainers.image.source"] = url
    version = facts.version or (facts.sha[:12] if facts.sha else None)
    if version:
        labels["org.opencontainers.image.version"] = version + ("-dirty" if facts.dirty else "")
    return labels


def _rfc3339(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
