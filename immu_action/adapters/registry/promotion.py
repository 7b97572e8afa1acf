"""Promote a tested digest by manifest copy; roll a tag back; trace a tag's history.

Promotion = GET the manifest by digest (sha256 verified) while HEADing each target tag
concurrently (the immutability check: an immutable tag already on another digest refuses the whole
promotion before any write; on the same digest nothing is written), PUT the same bytes
and media type (the registry's ``Docker-Content-Digest`` must equal the digest), then an
audit record per moved tag. Same repository: GET, HEAD, PUT and no blob upload.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from immu_action.adapters.pool import HelperPool
from immu_action.adapters.registry.audit import history, list_records, write_record
from immu_action.adapters.registry.client import (
    Manifest,
    Reference,
    RegistryClient,
    parse_reference,
)
from immu_action.adapters.registry.copy import CopyStats, ensure_content
from immu_action.adapters.registry.referrers import carry_referrers
from immu_action.core.audit import Action, AuditRecord
from immu_action.core.immutability import check_immutable
from immu_action.core.referrers import EMPTY_BLOB, EMPTY_DIGEST, Referrer
from immu_action.errors import BadInput, ImmuError, RegistryError

DEFAULT_MUTABLE = ("latest",)


class Registries:
    """One client per registry host, so auth tokens and connections are reused."""

    def __init__(self, *, insecure: bool = False,
                 clients: Mapping[str, RegistryClient] | None = None) -> None:
        self.insecure = insecure
        # Pre-built clients (custom retry policy, sleep, credentials) win over the defaults.
        self.clients: dict[str, RegistryClient] = dict(clients or {})

    def get(self, host: str) -> RegistryClient:
        """The client of ``host`` (credentials from the environment or Docker config)."""
        if host not in self.clients:
            self.clients[host] = RegistryClient.for_host(host, insecure=self.insecure)
        return self.clients[host]


@dataclass(frozen=True, kw_only=True)
class Provenance:
    """Why this digest may ship: commit, CI run, test totals, who asked."""

    commit: str | None = None
    run_url: str | None = None
    tests: Mapping[str, Any] | None = None
    actor: str | None = None


@dataclass(frozen=True, kw_only=True)
class TagResult:
    """What happened to one target tag."""

    reference: str
    digest: str
    previous_digest: str | None
    written: bool
    record: str | None = None
    copy: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class PromotionResult:
    """The promoted digest and the outcome per tag (the ``--json`` of promote/rollback)."""

    action: Action
    source: str
    digest: str
    media_type: str
    tags: tuple[TagResult, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"action": self.action, "source": self.source, "digest": self.digest,
                "media_type": self.media_type,
                "tags": [{"reference": t.reference, "digest": t.digest,
                          "previous_digest": t.previous_digest, "written": t.written,
                          "record": t.record, "copy": dict(t.copy)} for t in self.tags]}


def parse_targets(source: Reference, targets: Sequence[str]) -> list[Reference]:
    """``tag``, ``repo:tag`` or ``host/repo:tag`` -> references (default: source repo)."""
    refs = []
    for text in targets:
        if "/" not in text and ":" not in text and "@" not in text:
            text = f"{source.repository}:{text}"
        ref = parse_reference(text, default_host=source.host)
        if ref.tag is None or ref.digest:
            raise BadInput(f"target {text!r}: give a tag (REPO:TAG or TAG), not a digest")
        refs.append(ref)
    if not refs:
        raise BadInput("name at least one tag to promote to")
    return refs


def promote(source: str, targets: Sequence[str], *, mutable: Collection[str] = DEFAULT_MUTABLE,
            provenance: Provenance | None = None, registries: Registries | None = None,
            action: Action = "promote", audit: bool = True) -> PromotionResult:
    """Point each target tag at ``source`` (``REPO@DIGEST``) by manifest copy, with audit."""
    src = parse_reference(source)
    if not src.digest:
        raise BadInput(f"{source!r}: promote a digest (REPOSITORY@sha256:...), never a tag")
    refs = parse_targets(src, targets)
    registries = registries or Registries()
    provenance = provenance or Provenance()
    for ref in refs:
        registries.get(ref.host).will_write(ref.repository)
    if any(ref.host == src.host for ref in refs):
        registries.get(src.host).will_read(src.repository)  # mounts read the source
    # One pool for both rounds: the write round reuses the read round's threads.
    with HelperPool(max_workers=8) as pool:
        manifest, current = _read_phase(pool, registries, src, refs)
        check_immutable([(str(ref), ref.tag, now) for ref, now in current], manifest.digest,
                        mutable, action)
        entries: dict[tuple[str, str], list[Referrer]] = {}
        written = _write_phase(pool, registries, src, manifest, current, audit,
                               provenance, action, source, entries)
        unchanged = {str(ref): pool.submit(_missing_record, registries, ref, manifest,
                                           provenance, action, source)
                     for ref, previous in current
                     if audit and previous == manifest.digest and str(ref) not in written}
        results = [written.get(str(ref)) or TagResult(
            reference=str(ref), digest=manifest.digest, previous_digest=previous,
            written=False, record=_listed(ref, unchanged[str(ref)].result(), entries)
            if str(ref) in unchanged else None)
            for ref, previous in current]
        # Registries without the referrers API: the promotion's records join the digest's
        # referrers list in one update per repository (never racing each other).
        for (host, repo), found in entries.items():
            list_records(registries.get(host), repo, manifest.digest, found)
    return PromotionResult(action=action, source=str(src), digest=manifest.digest,
                           media_type=manifest.media_type, tags=tuple(results))


def _write_phase(pool: HelperPool, registries: Registries, src: Reference,
                 manifest: Manifest, current: list[tuple[Reference, str | None]], audit: bool,
                 provenance: Provenance, action: Action, source: str,
                 entries: dict[tuple[str, str], list[Referrer]]) -> dict[str, TagResult]:
    """Copy to every tag not already on the digest, with its audit record; per tag result.

    Content (blobs, an index's children, the record's empty config) is made present once
    per target repository before any PUT there: copies to several tags of one repository
    must not each mount the same blobs at once, since distribution 2.8 rewrites a blob's
    link file on every mount and a manifest PUT reading it mid-write fails (DIGEST_INVALID).
    The tag PUTs and the audit records are then independent requests, sent together: a
    promotion costs two round trips (read, write) in one repository. A record whose tag
    write then failed is visible: ``immu trace`` reports the tag out of sync.
    """
    src_client = registries.get(src.host)
    extra = {EMPTY_DIGEST: EMPTY_BLOB} if audit else None
    groups: dict[tuple[str, str], list[tuple[Reference, str | None]]] = {}
    seen = set()
    for ref, previous in current:
        if previous != manifest.digest and str(ref) not in seen:
            seen.add(str(ref))
            groups.setdefault((ref.host, ref.repository), []).append((ref, previous))

    def tag(dst: RegistryClient, ref: Reference, stats: CopyStats, content: Any) -> CopyStats:
        if content is not None:
            content.result()
        # put_manifest checks the registry stored these very bytes (the promoted digest)
        dst.put_manifest(ref.repository, str(ref.tag), manifest.data, manifest.media_type)
        stats.manifests_put += 1
        return stats

    def carry(dst: RegistryClient, repo: str, content: Any) -> list[str]:
        # After the content: the referrers share blobs with it (the empty config), and a
        # referrer's PUT while that blob is being mounted fails (DIGEST_INVALID).
        content.result()
        return carry_referrers(src_client, src.repository, manifest.digest, dst, repo)

    def record(ref: Reference, previous: str | None,
               content: Any) -> tuple[str, Referrer | None]:
        if content is not None:
            content.result()  # another repository: the record's blob comes with the content
        return _record(registries.get(ref.host), ref, manifest, previous, provenance,
                       action, source)

    jobs, carried = [], []
    for (host, repo), items in groups.items():
        dst, shared = registries.get(host), CopyStats()
        content = None if (host, repo) == (src.host, src.repository) else pool.submit(
            ensure_content, src_client, src.repository, manifest, dst, repo, shared, extra)
        if content is not None and audit:  # a promotion: results and records travel along
            carried.append(pool.submit(carry, dst, repo, content))
        for i, (ref, previous) in enumerate(items):
            stats = shared if i == 0 else CopyStats()  # the content is counted once
            jobs.append((ref, previous, pool.submit(tag, dst, ref, stats, content),
                         pool.submit(record, ref, previous, content) if audit else None))
    out = {}
    for ref, previous, put, rec in jobs:
        stats = put.result()  # a failed tag write raises (a record already written for it
        try:                  # shows in `immu trace` as out of sync)
            digest = _listed(ref, rec.result(), entries) if rec else None
        except ImmuError as e:
            raise RegistryError(
                f"{ref} now points at {manifest.digest}, but its audit record was not "
                f"written: {e}. Run the same promotion again: the tag stays, and the missing "
                "record is written then") from e
        out[str(ref)] = TagResult(reference=str(ref), digest=manifest.digest,
                                  previous_digest=previous, written=True, record=digest,
                                  copy=stats.as_dict())
    for job in carried:
        job.result()
    return out


def _listed(ref: Reference, written: tuple[str, Referrer | None] | None,
            entries: dict[tuple[str, str], list[Referrer]]) -> str | None:
    """The digest of a record just written; its referrers-list entry joins ``entries``."""
    if written is None:
        return None
    digest, entry = written
    if entry is not None:
        entries.setdefault((ref.host, ref.repository), []).append(entry)
    return digest


def _missing_record(registries: Registries, ref: Reference, manifest: Manifest,
                    provenance: Provenance, action: Action,
                    source: str) -> tuple[str, Referrer | None] | None:
    """For a tag already on the digest: write its record if the newest one names another
    digest or none exists (an earlier record write failed, or the tag moved outside immu)."""
    client = registries.get(ref.host)
    newest = history(client, ref.repository, str(ref.tag), limit=1)
    if newest and newest[0][1].digest == manifest.digest:
        return None
    return _record(client, ref, manifest, newest[0][1].digest if newest else None,
                   provenance, action, source)


def _read_phase(pool: HelperPool, registries: Registries, src: Reference,
                refs: list[Reference]) -> tuple[Manifest, list[tuple[Reference, str | None]]]:
    """GET the manifest and HEAD each target tag, all concurrently."""
    def tag_head(ref: Reference) -> str | None:
        return registries.get(ref.host).head_manifest(ref.repository, str(ref.tag))

    got = pool.submit(registries.get(src.host).get_manifest, src.repository, str(src.digest))
    tags = [pool.submit(tag_head, ref) for ref in refs]
    return got.result(), [(ref, f.result()) for ref, f in zip(refs, tags, strict=True)]


def _record(client: RegistryClient, ref: Reference, manifest: Manifest, previous: str | None,
            provenance: Provenance, action: Action, source: str) -> tuple[str, Referrer | None]:
    """Write one audit record of the tag's move: the record's digest and its referrers-list
    entry when the registry did not index it."""
    when = datetime.datetime.now(datetime.timezone.utc)
    record = AuditRecord(action=action, repository=ref.repository, tag=str(ref.tag),
                         digest=manifest.digest, previous_digest=previous,
                         time=when.isoformat(timespec="microseconds"),
                         commit=provenance.commit, run_url=provenance.run_url,
                         tests=provenance.tests, actor=provenance.actor, source=source)
    return write_record(client, ref.repository, record, manifest, when)
