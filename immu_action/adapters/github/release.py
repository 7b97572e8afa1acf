"""Releases and deployments on GitHub: the release section, its assets, the deployment record.

Idempotent: the release is found by tag, only the text between our markers is replaced (and
only when it changed), an asset whose sha256 GitHub reports as identical is left alone, and
a changed one is deleted before the upload (GitHub refuses duplicate names).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from github import UnknownObjectException

from immu_action.adapters.github.client import GitHubClient, github_call

BEGIN = "<!-- immu:begin -->"
END = "<!-- immu:end -->"
CONTENT_TYPES = {".json": "application/json", ".xml": "application/xml"}


def replace_section(body: str, section: str, *, begin: str = BEGIN, end: str = END) -> str:
    """``body`` with the text between ``begin``/``end`` replaced by ``section``.

    Without markers the section is appended, so what a human wrote stays untouched.
    """
    block = f"{begin}\n{section.strip()}\n{end}"
    start = body.find(begin)
    stop = body.find(end, start + len(begin)) if start >= 0 else -1
    if start >= 0 and stop >= 0:
        return body[:start] + block + body[stop + len(end):]
    return f"{body.rstrip()}\n\n{block}\n" if body.strip() else block + "\n"


@dataclass(frozen=True, kw_only=True)
class ReleaseOutcome:
    """What happened to the release: its page, whether created, assets replaced."""

    url: str
    created: bool
    replaced_assets: tuple[str, ...]
    uploaded_assets: tuple[str, ...]


def upsert_release(client: GitHubClient, *, tag: str, section: str,
                   assets: Mapping[str, bytes]) -> ReleaseOutcome:
    """Find or create the release of ``tag``, write our section, replace our assets."""
    with github_call(f"find or create the release for tag {tag!r}"):
        created = False
        try:
            release = client.repo.get_release(tag)
        except UnknownObjectException:
            release = client.repo.create_git_release(
                tag=tag, name=tag, message=replace_section("", section),
                prerelease="-" in tag)  # semver pre-release (v1.2.0-rc.1)
            created = True
        else:
            body = replace_section(release.body or "", section)
            if body != (release.body or ""):
                # Pass draft/prerelease back: PyGithub would otherwise reset them to False.
                release = release.update_release(
                    name=release.name or tag, message=body, draft=release.draft,
                    prerelease=release.prerelease)
    existing = {a.name: a for a in release.assets}
    replaced: list[str] = []
    uploaded: list[str] = []
    for name, data in assets.items():
        with github_call(f"upload release asset {name!r} to {tag!r}"):
            if name in existing:
                # GitHub reports each asset's sha256: an identical re-upload is skipped.
                if existing[name].digest == f"sha256:{hashlib.sha256(data).hexdigest()}":
                    continue
                existing[name].delete_asset()
                replaced.append(name)
            uploaded.append(name)
            suffix = name[name.rfind("."):] if "." in name else ""
            release.upload_asset_from_memory(
                io.BytesIO(data), len(data), name=name,
                content_type=CONTENT_TYPES.get(suffix, "application/octet-stream"))
    return ReleaseOutcome(url=release.html_url, created=created,
                          replaced_assets=tuple(replaced), uploaded_assets=tuple(uploaded))


def record_deployment(client: GitHubClient, *, sha: str, environment: str,
                      payload: Mapping[str, Any], description: str, log_url: str) -> int:
    """A deployment of ``sha`` to ``environment`` with a success status; returns its id.

    ``required_contexts=[]``: our own statuses are the evidence and may still be pending for
    other tools; ``auto_merge=False``: a deployment must never merge branches.
    """
    with github_call(f"record the deployment to {environment!r}"):
        deployment = client.repo.create_deployment(
            ref=sha, task="deploy", auto_merge=False, required_contexts=[],
            payload=dict(payload), environment=environment, description=description[:140],
            production_environment=environment == "production")
        deployment.create_status("success", target_url=log_url,
                                 description=description[:140])
        return int(deployment.id)
