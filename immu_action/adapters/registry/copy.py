"""Copy a manifest (and what it references) between repositories and registries.

Same repository: nothing but the manifest PUT. Same registry, other repository: blobs
are mounted (one POST each, 201; a 202 falls back to a streamed copy). Another
registry: blobs the target lacks are streamed GET -> PUT. An index is copied as is
(children first, by digest), so its digest is preserved. Content is ensured once per
target repository (``ensure_content``), then each tag is one manifest PUT.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from immu_action.adapters.pool import HelperPool
from immu_action.adapters.registry.client import RegistryClient
from immu_action.core.manifests import INDEX_TYPES, MANIFEST_TYPES, Manifest, parse_manifest
from immu_action.errors import RegistryError

PARALLEL = 8  # concurrent blob transfers per manifest (a mount is one small POST)


@dataclass(kw_only=True)
class CopyStats:
    """What a copy had to do (mutable accumulator, reported in ``--json``)."""

    manifests_put: int = 0
    blobs_mounted: int = 0
    blobs_streamed: int = 0
    blobs_present: int = 0
    bytes_streamed: int = 0
    children: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"manifests_put": self.manifests_put, "blobs_mounted": self.blobs_mounted,
                "blobs_streamed": self.blobs_streamed, "blobs_present": self.blobs_present,
                "bytes_streamed": self.bytes_streamed}


def _blob_descriptors(doc: dict[str, Any], what: str) -> list[dict[str, Any]]:
    """Config and layers of an image manifest, skipping foreign (``urls``) layers."""
    config = doc.get("config")
    layers = doc.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        raise RegistryError(f"{what}: image manifest lacks config or layers")
    return [d for d in [config, *layers] if isinstance(d, dict) and not d.get("urls")]


def ensure_content(src: RegistryClient, src_repo: str, manifest: Manifest,
                   dst: RegistryClient, dst_repo: str, stats: CopyStats,
                   extra: Mapping[str, bytes] | None = None) -> None:
    """Make every blob and child manifest of ``manifest`` present in ``dst_repo``.

    ``extra`` (digest -> small bytes) are more blobs to have there, transferred in the same
    concurrent batch (the audit record's empty config).
    """
    what = f"{src.host}/{src_repo}@{manifest.digest}"
    doc = parse_manifest(manifest.data, what)
    if manifest.media_type in INDEX_TYPES:
        for child in doc.get("manifests") or []:
            digest = str(child["digest"])
            if dst.head_manifest(dst_repo, digest) == digest:
                continue
            child_manifest = src.get_manifest(src_repo, digest)
            ensure_content(src, src_repo, child_manifest, dst, dst_repo, stats)
            dst.put_manifest(dst_repo, digest, child_manifest.data, child_manifest.media_type)
            stats.manifests_put += 1
            stats.children.append(digest)
    elif manifest.media_type in MANIFEST_TYPES:
        descs = _blob_descriptors(doc, what)
        extras = [{"digest": d, "size": len(b), "body": b} for d, b in (extra or {}).items()]
        # Blobs are independent: mount/copy them concurrently (as skopeo and docker do).
        with HelperPool(max_workers=min(PARALLEL, len(descs) + len(extras))) as pool:
            outcomes = list(pool.map(
                lambda d: _ensure_blob(src, src_repo, dst, dst_repo, d), descs + extras))
        for outcome, desc in zip(outcomes[:len(descs)], descs, strict=True):  # image blobs
            if outcome == "mounted":
                stats.blobs_mounted += 1
            elif outcome == "present":
                stats.blobs_present += 1
            else:
                stats.blobs_streamed += 1
                stats.bytes_streamed += int(desc.get("size", 0))
    else:
        raise RegistryError(f"{what}: cannot copy media type {manifest.media_type!r}; "
                            "only OCI/Docker v2 manifests and indexes are supported")


def _ensure_blob(src: RegistryClient, src_repo: str, dst: RegistryClient, dst_repo: str,
                 desc: dict[str, Any]) -> Literal["mounted", "present", "copied"]:
    """Mount within a registry (no HEAD: a mount of a present blob is a 201 too)."""
    digest, body = str(desc["digest"]), desc.get("body")
    if src is dst:
        return dst.mount_blob(dst_repo, digest, src_repo, body)
    if dst.blob_exists(dst_repo, digest):
        return "present"
    dst.upload_blob(dst_repo, digest, body if body is not None
                    else src.blob_stream(src_repo, digest))
    return "copied"
