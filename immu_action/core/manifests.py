"""Manifest formats and digests (pure): media types, hashing, verification, config digest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from immu_action.errors import RegistryError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """``algorithm:hex`` of ``data``."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def verify_digest(data: bytes, digest: str, what: str) -> None:
    """Abort unless ``data`` hashes to ``digest``: the bytes are not the ones named."""
    algorithm = digest.split(":", 1)[0]
    actual = digest_of(data, algorithm)
    if actual != digest:
        raise RegistryError(f"{what}: content digest mismatch: asked for {digest}, the bytes "
                            f"hash to {actual}; aborting (corrupted or tampered response)")


def parse_manifest(data: bytes, what: str) -> dict[str, Any]:
    """Manifest bytes -> JSON object, or RegistryError naming what was read."""
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise RegistryError(f"{what}: manifest is not JSON") from e
    if not isinstance(doc, dict):
        raise RegistryError(f"{what}: manifest is not a JSON object")
    return doc


def config_digest(manifest_bytes: bytes, media_type: str) -> str:
    """The image config digest of a single-image manifest (the local image ID)."""
    if media_type not in MANIFEST_TYPES:
        raise RegistryError(f"manifest of type {media_type} has no single image config; "
                            "expected an image manifest, not an index")
    config = parse_manifest(manifest_bytes, "image manifest").get("config")
    if not isinstance(config, dict) or not isinstance(config.get("digest"), str):
        raise RegistryError("image manifest has no config.digest")
    return str(config["digest"])


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """Manifest bytes exactly as stored, with their media type and verified digest."""

    data: bytes
    media_type: str
    digest: str
