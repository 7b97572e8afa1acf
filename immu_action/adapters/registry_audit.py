"""The audit trail in the registry: write a record artifact, walk a tag's history.

See ``immu_action.core.audit`` for the format. Writing costs four requests per tag:
HEAD of the ``immu-audit-<tag>`` chain head, POST + PUT of the record blob, PUT of the
record manifest under that tag.
"""

from __future__ import annotations

from immu_action.adapters.registry import Manifest, RegistryClient, digest_of
from immu_action.core.audit import (
    OCI_MANIFEST,
    AuditRecord,
    audit_tag,
    decode_record,
    encode_record,
    record_blob_digest,
    record_manifest,
)
from immu_action.errors import RegistryError


def chain_head(client: RegistryClient, repo: str, tag: str) -> str | None:
    """Digest of the newest record manifest of ``tag``, None when it has no history."""
    return client.head_manifest(repo, audit_tag(tag))


def write_record(client: RegistryClient, repo: str, record: AuditRecord,
                 subject: Manifest) -> str:
    """Store ``record`` as an artifact referring to ``subject``; returns its manifest digest."""
    blob = encode_record(record)
    blob_digest = digest_of(blob)
    client.upload_blob(repo, blob_digest, blob)
    manifest = record_manifest(record_digest=blob_digest, record_size=len(blob),
                               subject_digest=subject.digest, subject_size=len(subject.data),
                               subject_media_type=subject.media_type, record=record)
    return client.put_manifest(repo, audit_tag(record.tag), manifest, OCI_MANIFEST)


def read_record(client: RegistryClient, repo: str, manifest_digest: str) -> AuditRecord:
    """One record, by the digest of its manifest (both manifest and blob verified)."""
    manifest = client.get_manifest(repo, manifest_digest)
    what = f"{client.host}/{repo}@{manifest_digest}"
    try:
        blob_digest = record_blob_digest(manifest.data)
        return decode_record(client.get_blob(repo, blob_digest))
    except (ValueError, KeyError, TypeError) as e:
        raise RegistryError(f"{what}: not a readable immu audit record ({e})") from e


def history(client: RegistryClient, repo: str, tag: str,
            limit: int = 100) -> list[tuple[str, AuditRecord]]:
    """Records of ``tag``, newest first, as (record digest, record), at most ``limit``."""
    out: list[tuple[str, AuditRecord]] = []
    seen: set[str] = set()
    current = chain_head(client, repo, tag)
    while current and len(out) < limit and current not in seen:
        seen.add(current)  # a cycle would be corruption; stop rather than loop
        record = read_record(client, repo, current)
        out.append((current, record))
        current = record.previous_record
    return out
