"""Tested-is-shipped: prove that a pushed tag carries the config of the image under test."""

from __future__ import annotations

from typing import NamedTuple

from immu_action.adapters.registry.client import RegistryClient
from immu_action.core.manifests import INDEX_TYPES, config_digest, parse_manifest
from immu_action.core.references import parse_reference
from immu_action.errors import RegistryError


class PushedImage(NamedTuple):
    """The registry's view of a pushed image."""

    manifest_digest: str
    config_digest: str
    media_type: str


def verify_pushed(repository: str, tag: str, expected_config: str, *,
                  insecure: bool = False, client: RegistryClient | None = None) -> PushedImage:
    """HEAD then GET ``repository:tag``, verify the bytes, and match the config digest.

    ``expected_config`` is the local image ID (``sha256:...``). For an index, the child
    whose config matches is found and the *index* digest is returned (that is what is
    promoted). Raises RegistryError when the pushed image is not the tested one.
    """
    ref = parse_reference(f"{repository}:{tag}")
    client = client or RegistryClient.for_host(ref.host, insecure=insecure)
    head = client.head_manifest(ref.repository, tag)
    if head is None:
        raise RegistryError(f"{ref}: not found after push")
    manifest = client.get_manifest(ref.repository, head)  # verifies sha256 == HEAD digest
    configs = [config_digest(manifest.data, manifest.media_type)] \
        if manifest.media_type not in INDEX_TYPES else [
            config_digest(child.data, child.media_type)
            for child in (client.get_manifest(ref.repository, str(c["digest"]))
                          for c in parse_manifest(manifest.data, str(ref)).get("manifests", []))
        ]
    if manifest.digest == expected_config:
        # The containerd image store names an image by its manifest (or index) digest.
        return PushedImage(manifest.digest, expected_config, manifest.media_type)
    if expected_config not in configs:
        raise RegistryError(f"{ref}@{manifest.digest}: config {', '.join(configs)} is not the "
                            f"tested image {expected_config}; the pushed image is not the "
                            "tested one (was the tag overwritten concurrently?)")
    return PushedImage(manifest.digest, expected_config, manifest.media_type)
