"""The audit trail in the registry: write a record artifact, read a tag's history.

See ``immu_action.core.audit`` for the format. Writing a record is one PUT of the record
manifest under its own tag (plus, once per repository, the upload of the 2-byte empty
config blob); nothing has to be read first. The records of one promotion are then added to
the promoted digest's referrers list in one update (registries without the referrers API).
Reading lists the repository's tags from the tag's record prefix on and GETs the newest
records concurrently.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Sequence

from immu_action.adapters.pool import HelperPool
from immu_action.adapters.registry.client import Manifest, RegistryClient, RegistryHTTPError
from immu_action.adapters.registry.referrers import add_to_fallback
from immu_action.core.audit import (
    AuditRecord,
    record_from_manifest,
    record_manifest,
    record_name,
    record_prefix,
    record_stamp,
)
from immu_action.core.manifests import OCI_MANIFEST
from immu_action.core.referrers import EMPTY_BLOB, EMPTY_DIGEST, Referrer, referrer_of
from immu_action.errors import RegistryError

_EMPTY_BLOB_LOCK = threading.Lock()


def write_record(client: RegistryClient, repo: str, record: AuditRecord, subject: Manifest,
                 when: datetime.datetime) -> tuple[str, Referrer | None]:
    """Store ``record`` as an artifact referring to ``subject``: its manifest digest, and
    its referrers-list entry when the registry did not index it itself (the caller adds
    the entries of one subject to its referrers tag in one update, ``list_records``)."""
    manifest = record_manifest(subject_digest=subject.digest, subject_size=len(subject.data),
                               subject_media_type=subject.media_type, record=record)
    name = record_name(record.tag, when)
    try:
        digest, headers = client.put_manifest_headers(repo, name, manifest, OCI_MANIFEST)
    except RegistryHTTPError as e:
        # First record in this repository: the empty config blob is not there yet (or,
        # DIGEST_INVALID, another thread of this promotion is linking it right now).
        if e.code not in ("MANIFEST_BLOB_UNKNOWN", "DIGEST_INVALID"):
            raise
        with _EMPTY_BLOB_LOCK:  # one upload, and no PUT reading its link file mid-write
            if not client.blob_exists(repo, EMPTY_DIGEST):
                client.upload_blob(repo, EMPTY_DIGEST, EMPTY_BLOB)
        digest, headers = client.put_manifest_headers(repo, name, manifest, OCI_MANIFEST)
    indexed = headers.get("OCI-Subject") == subject.digest
    return digest, None if indexed else referrer_of(manifest)


def list_records(client: RegistryClient, repo: str, subject: str,
                 entries: Sequence[Referrer]) -> None:
    """Add the records of ``subject`` to its referrers list (the spec's tag schema), so any
    OCI tool lists a digest's promotions beside its test results."""
    if entries:
        add_to_fallback(client, repo, subject, entries)


def read_record(client: RegistryClient, repo: str, reference: str) -> tuple[str, AuditRecord]:
    """One record by its tag name or manifest digest: (manifest digest, record)."""
    manifest = client.get_manifest(repo, reference)
    try:
        return manifest.digest, record_from_manifest(manifest.data)
    except (ValueError, KeyError, TypeError) as e:
        raise RegistryError(f"{client.host}/{repo}:{reference}: not a readable immu "
                            f"audit record ({e})") from e


def record_names(client: RegistryClient, repo: str, tag: str) -> list[str]:
    """Tag names of ``tag``'s records, newest first."""
    prefix = record_prefix(tag)
    stamped = []
    # Every page is read: registries disagree on the order of tags/list (distribution
    # 2.8 ignores ``last`` and does not sort; the OCI spec says case-insensitive), so no
    # name proves that no record of the tag follows.
    for name in client.list_tags(repo, after=prefix[:-1]):
        stamp = record_stamp(name, tag) if name.startswith(prefix) else None
        if stamp is not None:
            stamped.append((stamp, name))
    return [name for _, name in sorted(stamped, reverse=True)]


def history(client: RegistryClient, repo: str, tag: str,
            limit: int = 100) -> list[tuple[str, AuditRecord]]:
    """Records of ``tag``, newest first, as (record digest, record), at most ``limit``.

    A record whose own fields name another repository or tag is not part of the history
    (a foreign tag that happens to look like a record name, or a hashed long-tag clash).
    """
    names = record_names(client, repo, tag)[:max(0, limit)]
    if not names:
        return []
    with HelperPool(max_workers=min(8, len(names))) as pool:
        found = list(pool.map(lambda name: read_record(client, repo, name), names))
    return [(digest, r) for digest, r in found if r.tag == tag and r.repository == repo]
