"""The audit trail in the registry: write a record artifact, walk a tag's history.

See ``immu_action.core.audit`` for the format. Writing costs two requests per tag: HEAD
of the ``immu-audit-<tag>`` chain head and PUT of the record manifest under that tag
(plus, once per repository, the upload of the 2-byte empty config blob).
"""

from __future__ import annotations

from immu_action.adapters.registry import Manifest, RegistryClient, RegistryHTTPError
from immu_action.core.audit import (
    EMPTY_BLOB,
    EMPTY_DIGEST,
    OCI_MANIFEST,
    AuditRecord,
    audit_tag,
    record_from_manifest,
    record_manifest,
)
from immu_action.errors import RegistryError


def chain_head(client: RegistryClient, repo: str, tag: str) -> str | None:
    """Digest of the newest record manifest of ``tag``, None when it has no history."""
    return client.head_manifest(repo, audit_tag(tag))


def write_record(client: RegistryClient, repo: str, record: AuditRecord,
                 subject: Manifest) -> str:
    """Store ``record`` as an artifact referring to ``subject``; returns its manifest digest."""
    manifest = record_manifest(subject_digest=subject.digest, subject_size=len(subject.data),
                               subject_media_type=subject.media_type, record=record)
    tag = audit_tag(record.tag)
    try:
        return client.put_manifest(repo, tag, manifest, OCI_MANIFEST)
    except RegistryHTTPError as e:
        # First record in this repository: the empty config blob is not there yet.
        if e.code != "MANIFEST_BLOB_UNKNOWN":
            raise
    client.upload_blob(repo, EMPTY_DIGEST, EMPTY_BLOB)
    return client.put_manifest(repo, tag, manifest, OCI_MANIFEST)


def read_record(client: RegistryClient, repo: str, manifest_digest: str) -> AuditRecord:
    """One record, by the digest of its manifest (verified)."""
    manifest = client.get_manifest(repo, manifest_digest)
    try:
        return record_from_manifest(manifest.data)
    except (ValueError, KeyError, TypeError) as e:
        raise RegistryError(f"{client.host}/{repo}@{manifest_digest}: not a readable immu "
                            f"audit record ({e})") from e


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
