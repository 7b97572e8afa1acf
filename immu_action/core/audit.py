"""Audit records of promotions and rollbacks, and their encoding as OCI artifacts (pure).

A record is stored in the registry next to the image it is about, so ``trace`` needs no
other database. It is the ``io.immu.record`` annotation (canonical JSON) of a small OCI
manifest with ``artifactType`` ``application/vnd.immu.promotion.v1+json``, the empty
config ``{}`` and no layers, whose ``subject`` is the promoted manifest (a referrer, for
registries with the referrers API). Keeping the record in the manifest makes writing it
one PUT (the 2-byte empty blob is uploaded once per repository) and reading it one GET.
Because the Debian registry (distribution 2.8) has no referrers API, the newest record
of each tag is also tagged ``immu-audit-<tag>``, and each record names the previous
record's digest: a linked list that ``trace`` walks back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

AUDIT_MEDIA_TYPE = "application/vnd.immu.promotion.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
AUDIT_TAG_PREFIX = "immu-audit-"
RECORD_ANNOTATION = "io.immu.record"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
Action = Literal["promote", "rollback"]


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    """One change of a tag: what it points at now, what it pointed at, and why we trust it."""

    action: Action
    repository: str
    tag: str
    digest: str
    previous_digest: str | None
    previous_record: str | None
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


def audit_tag(tag: str) -> str:
    """The tag holding the newest record of ``tag`` (hashed when it would exceed 128)."""
    name = AUDIT_TAG_PREFIX + tag
    if len(name) <= 128:
        return name
    return AUDIT_TAG_PREFIX + "h-" + hashlib.sha256(tag.encode()).hexdigest()[:48]


def record_manifest(*, subject_digest: str, subject_size: int, subject_media_type: str,
                    record: AuditRecord) -> bytes:
    """The OCI artifact manifest carrying ``record``, referring to the promoted image."""
    annotations = {
        "org.opencontainers.image.created": record.time,
        "io.immu.action": record.action,
        "io.immu.tag": record.tag,
        RECORD_ANNOTATION: encode_record(record).decode(),
    }
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": AUDIT_MEDIA_TYPE,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": EMPTY_DIGEST,
                   "size": len(EMPTY_BLOB)},
        "layers": [],
        "subject": {"mediaType": subject_media_type, "digest": subject_digest,
                    "size": subject_size},
        "annotations": annotations,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def record_from_manifest(manifest: bytes) -> AuditRecord:
    """The record carried by a record manifest; ValueError when it is not one of ours."""
    doc = json.loads(manifest)
    if not isinstance(doc, dict) or doc.get("artifactType") != AUDIT_MEDIA_TYPE:
        raise ValueError("not an immu audit manifest")
    annotations = doc.get("annotations")
    if not isinstance(annotations, dict) or RECORD_ANNOTATION not in annotations:
        raise ValueError(f"audit manifest without the {RECORD_ANNOTATION} annotation")
    return decode_record(str(annotations[RECORD_ANNOTATION]).encode())
