"""Audit records of promotions and rollbacks, and their encoding as OCI artifacts (pure).

A record is stored in the registry next to the image it is about, so ``trace`` needs no
other database. It is the ``io.immu.record`` annotation (canonical JSON) of a small OCI
manifest with ``artifactType`` ``application/vnd.immu.promotion.v1+json``, the empty
config ``{}`` and no layers, whose ``subject`` is the promoted manifest (a referrer, for
registries with the referrers API). Keeping the record in the manifest makes writing it
one PUT (the 2-byte empty blob is uploaded once per repository) and reading it one GET.

Because the Debian registry (distribution 2.8) has no referrers API, each record is also
tagged, under a name of its own: ``immu-audit-<tag>.<UTC time, microseconds>Z-<6 hex>``
(``immu-audit-h-<hash of tag>...`` when the tag is too long to fit). Writing a record
therefore needs nothing read first -- no chain head to look up, and two concurrent
promotions of one tag both keep their record -- and ``trace`` lists the tags with the
prefix and sorts them by their fixed-width time (newest first).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from immu_action.core.referrers import artifact_manifest

AUDIT_MEDIA_TYPE = "application/vnd.immu.promotion.v1+json"
AUDIT_TAG_PREFIX = "immu-audit-"
RECORD_ANNOTATION = "io.immu.record"
Action = Literal["promote", "rollback"]


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    """One change of a tag: what it points at now, what it pointed at, and why we trust it."""

    action: Action
    repository: str
    tag: str
    digest: str
    previous_digest: str | None
    time: str
    commit: str | None = None
    run_url: str | None = None
    tests: Mapping[str, Any] | None = None
    actor: str | None = None
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form (also the ``--json`` shape of trace entries)."""
        data = asdict(self)
        data["tests"] = dict(self.tests) if self.tests is not None else None
        return data


def encode_record(record: AuditRecord) -> bytes:
    """Canonical JSON bytes (sorted keys, compact): the same record, the same digest."""
    doc = {"schema": AUDIT_MEDIA_TYPE, **record.as_dict()}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def decode_record(data: bytes) -> AuditRecord:
    """Bytes of a record blob -> AuditRecord; ValueError when it is not one of ours."""
    doc = json.loads(data)
    if not isinstance(doc, dict) or doc.pop("schema", None) != AUDIT_MEDIA_TYPE:
        raise ValueError("not an immu promotion record")
    if doc.get("action") not in ("promote", "rollback"):
        raise ValueError(f"unknown action {doc.get('action')!r}")
    fields = set(AuditRecord.__dataclass_fields__)
    # Unknown keys from newer versions are ignored so old readers keep working.
    return AuditRecord(**{k: v for k, v in doc.items() if k in fields})


STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"  # fixed width, so names sort by time
_RECORD_NAME = re.compile(r"^immu-audit-(?P<key>.+)\.(?P<stamp>\d{8}T\d{12}Z)-[0-9a-f]{6}$")
_KEY_MAX = 128 - len(AUDIT_TAG_PREFIX) - len(".20261126T000000000000Z-abcdef")


def record_key(tag: str) -> str:
    """How ``tag`` appears in its record names: itself, or ``h-<hash>`` when too long."""
    if len(tag) <= _KEY_MAX:
        return tag
    return "h-" + hashlib.sha256(tag.encode()).hexdigest()[:48]


def record_prefix(tag: str) -> str:
    """Every record name of ``tag`` starts with this (so may a longer tag's: see
    ``record_stamp``)."""
    return f"{AUDIT_TAG_PREFIX}{record_key(tag)}."


def record_name(tag: str, when: datetime.datetime, nonce: str | None = None) -> str:
    """A fresh, valid tag name for one record of ``tag`` written at ``when`` (UTC)."""
    stamp = when.astimezone(datetime.timezone.utc).strftime(STAMP_FORMAT)
    return f"{record_prefix(tag)}{stamp}-{nonce or secrets.token_hex(3)}"


def record_stamp(name: str, tag: str) -> str | None:
    """The sortable time of record name ``name`` if it is a record of ``tag``, else None."""
    found = _RECORD_NAME.match(name)
    if found is None or found["key"] != record_key(tag):
        return None
    return found["stamp"]


def is_record_name(name: str) -> bool:
    """True for the tag names of audit records (not image tags)."""
    return _RECORD_NAME.match(name) is not None


def record_key_of(name: str) -> str | None:
    """The tag (or ``h-<hash>`` of a long tag) a record name belongs to; None if not one."""
    found = _RECORD_NAME.match(name)
    return found["key"] if found else None


def record_manifest(*, subject_digest: str, subject_size: int, subject_media_type: str,
                    record: AuditRecord) -> bytes:
    """The OCI artifact manifest carrying ``record``, referring to the promoted image."""
    return artifact_manifest(
        artifact_type=AUDIT_MEDIA_TYPE, subject_digest=subject_digest,
        subject_size=subject_size, subject_media_type=subject_media_type,
        annotations={"org.opencontainers.image.created": record.time,
                     "io.immu.action": record.action, "io.immu.tag": record.tag,
                     RECORD_ANNOTATION: encode_record(record).decode()})


def record_from_manifest(manifest: bytes) -> AuditRecord:
    """The record carried by a record manifest; ValueError when it is not one of ours."""
    doc = json.loads(manifest)
    if not isinstance(doc, dict) or doc.get("artifactType") != AUDIT_MEDIA_TYPE:
        raise ValueError("not an immu audit manifest")
    annotations = doc.get("annotations")
    if not isinstance(annotations, dict) or RECORD_ANNOTATION not in annotations:
        raise ValueError(f"audit manifest without the {RECORD_ANNOTATION} annotation")
    return decode_record(str(annotations[RECORD_ANNOTATION]).encode())


def rollback_candidates(records: Sequence[AuditRecord], current: str | None) -> list[str]:
    """Earlier digests to roll back to, newest first.

    Only digests that were promoted count; the current one and any digest a later
    rollback moved away from are excluded, so repeated ``--steps 1`` walks further back
    instead of toggling between two digests.
    """
    abandoned = {r.previous_digest for r in records if r.action == "rollback"}
    out: list[str] = []
    for r in records:
        if r.action == "promote" and r.digest != current and r.digest not in abandoned \
                and r.digest not in out:
            out.append(r.digest)
    return out


def earlier_digests(records: Sequence[tuple[str, AuditRecord]],
                    current: str | None) -> list[str]:
    """Distinct digests the tag pointed at before, newest first."""
    out: list[str] = []
    for _, r in records:
        for d in (r.digest, r.previous_digest):
            if d and d != current and d not in out:
                out.append(d)
    return out
