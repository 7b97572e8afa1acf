"""Referrers of a manifest (pure): OCI artifacts whose ``subject`` names it, and the
distribution spec 1.1 fallback for registries without the referrers API.

A registry with the API indexes an artifact when it is pushed (and says so with the
``OCI-Subject`` header); ``GET /v2/<name>/referrers/<digest>`` lists them. Elsewhere
(distribution 2.8, GHCR and Docker Hub today) the client keeps the list itself: an OCI
image index tagged ``<alg>-<hex>`` (the referrers tag schema) whose ``manifests`` are
the descriptors of the artifacts, each with its ``artifactType`` and annotations. This
module builds and merges those lists; ``adapters.registry.referrers`` does the I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from immu_action.core.manifests import OCI_INDEX, OCI_MANIFEST, digest_of
from immu_action.core.references import DIGEST_PATTERN

EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def fallback_tag(digest: str) -> str:
    """The referrers tag schema's tag of ``digest``: ``<alg>-<ref>``, the algorithm cut
    to 32 characters and the encoded part to 64 (a sha256 digest fits whole)."""
    if not DIGEST_PATTERN.match(digest):
        raise ValueError(f"{digest!r} is not a digest")
    algorithm, encoded = digest.split(":", 1)
    return f"{algorithm[:32]}-{encoded[:64]}"


@dataclass(frozen=True, kw_only=True)
class Referrer:
    """One entry of a referrers list: the artifact's manifest descriptor."""

    digest: str
    size: int
    media_type: str = OCI_MANIFEST
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    def descriptor(self) -> dict[str, Any]:
        """The descriptor as an index lists it."""
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest,
                               "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


def artifact_manifest(*, artifact_type: str, subject_digest: str, subject_size: int,
                      subject_media_type: str, layers: Iterable[Mapping[str, Any]] = (),
                      annotations: Mapping[str, str] | None = None) -> bytes:
    """An OCI image manifest carrying an artifact (the empty config, as the image spec
    1.1 advises) that refers to ``subject``; canonical JSON, so equal input is one digest."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": EMPTY_DIGEST,
                   "size": len(EMPTY_BLOB)},
        "layers": [dict(layer) for layer in layers],
        "subject": {"mediaType": subject_media_type, "digest": subject_digest,
                    "size": subject_size},
    }
    if annotations:
        doc["annotations"] = dict(annotations)
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def referrer_of(manifest: bytes, media_type: str = OCI_MANIFEST) -> Referrer:
    """The referrers-list entry of an artifact manifest (its type and annotations copied,
    as the spec asks, so a list can be filtered without fetching each artifact)."""
    doc = json.loads(manifest)
    artifact_type = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
    annotations = doc.get("annotations") or {}
    return Referrer(digest=digest_of(manifest), size=len(manifest), media_type=media_type,
                    artifact_type=artifact_type,
                    annotations={str(k): str(v) for k, v in annotations.items()})


def subject_of(manifest: bytes) -> str | None:
    """The digest an artifact manifest refers to, None when it has no subject."""
    try:
        subject = json.loads(manifest).get("subject")
    except (ValueError, AttributeError):
        return None
    return subject.get("digest") if isinstance(subject, dict) else None


def parse_list(data: bytes | None) -> list[Referrer]:
    """The entries of a referrers list (an OCI index), in order; None or b"" is empty.
    ValueError when ``data`` is not an index."""
    if not data:
        return []
    doc = json.loads(data)
    if not isinstance(doc, dict) or not isinstance(doc.get("manifests"), list) \
            or doc.get("mediaType", OCI_INDEX) != OCI_INDEX:
        raise ValueError("not an OCI image index")
    return parse_entries(doc["manifests"])


def parse_entries(entries: Iterable[Any]) -> list[Referrer]:
    """Descriptors (an index's ``manifests``) as entries; malformed ones are skipped."""
    out = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("digest"), str) \
                or not DIGEST_PATTERN.match(entry["digest"]):
            continue
        annotations = entry.get("annotations") or {}
        out.append(Referrer(
            digest=entry["digest"], size=int(entry.get("size") or 0),
            media_type=str(entry.get("mediaType") or OCI_MANIFEST),
            artifact_type=entry.get("artifactType"),
            annotations={str(k): str(v) for k, v in annotations.items()}))
    return out


def render_list(entries: Iterable[Referrer]) -> bytes:
    """A referrers list (an OCI index) of ``entries``."""
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX,
           "manifests": [e.descriptor() for e in entries]}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def merged(current: Iterable[Referrer], wanted: Iterable[Referrer]) -> list[Referrer] | None:
    """``current`` with every entry of ``wanted`` it lacks appended (no duplicates: a
    digest is listed once); None when nothing is missing (no write needed)."""
    out = list(current)
    have = {e.digest for e in out}
    added = False
    for entry in wanted:
        if entry.digest not in have:
            out.append(entry)
            have.add(entry.digest)
            added = True
    return out if added else None


def of_type(entries: Iterable[Referrer], artifact_type: str | None) -> list[Referrer]:
    """The entries of ``artifact_type`` (all when None)."""
    return [e for e in entries if artifact_type is None or e.artifact_type == artifact_type]
