"""Attach artifacts to a manifest and list them: the referrers API where the registry has
it, the distribution spec's referrers tag schema where it does not (formats in
``core.referrers``).

Attaching uploads the artifact's blobs, PUTs its manifest by digest and, unless the
registry answered ``OCI-Subject`` (it indexed the artifact itself), adds the artifact's
descriptor to the ``<alg>-<hex>`` index. That index is shared by every writer (other runs,
shards, other tools) and registries like distribution 2.8 honour no conditional write, so
the update is read, merge, write (with ``If-Match`` where the registry gives an ETag),
then, after a short random pause, read again: an entry another writer's update dropped is
merged back, within a bounded number of rounds.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from immu_action.adapters.registry.client import RegistryClient, RegistryHTTPError
from immu_action.core.manifests import OCI_INDEX, OCI_MANIFEST, Manifest, digest_of
from immu_action.core.referrers import (
    EMPTY_BLOB,
    EMPTY_DIGEST,
    Referrer,
    fallback_tag,
    merged,
    of_type,
    parse_entries,
    parse_list,
    referrer_of,
    render_list,
)
from immu_action.errors import RegistryError

ROUNDS = 6
SETTLE_S = (0.05, 0.25)  # the pause before the read that checks a write survived
_BLOB_LOCK = threading.Lock()


def ensure_blobs(client: RegistryClient, repo: str, blobs: Mapping[str, bytes]) -> None:
    """Upload each blob ``repo`` does not hold yet (one at a time: two uploads of one
    blob racing make distribution 2.8 answer DIGEST_INVALID)."""
    with _BLOB_LOCK:
        for digest, data in blobs.items():
            if not client.blob_exists(repo, digest):
                client.upload_blob(repo, digest, data)


def attach(client: RegistryClient, repo: str, manifest: bytes, *, subject: str,
           blobs: Mapping[str, bytes] = {},
           sleep: Callable[[float], None] = time.sleep) -> Referrer:
    """Store the artifact ``manifest`` (its ``subject`` is ``subject``) with its ``blobs``
    and make it discoverable; returns its referrers-list entry."""
    ensure_blobs(client, repo, {EMPTY_DIGEST: EMPTY_BLOB, **blobs})
    digest = digest_of(manifest)
    _, headers = client.put_manifest_headers(repo, digest, manifest, OCI_MANIFEST)
    entry = referrer_of(manifest)
    if headers.get("OCI-Subject") != subject:
        add_to_fallback(client, repo, subject, [entry], sleep=sleep)
    return entry


def add_to_fallback(client: RegistryClient, repo: str, subject: str,
                    entries: Sequence[Referrer], *,
                    sleep: Callable[[float], None] = time.sleep) -> None:
    """Make sure the referrers tag of ``subject`` lists every one of ``entries``."""
    tag = fallback_tag(subject)
    for _ in range(ROUNDS):
        current, etag = client.find_manifest(repo, tag)
        try:
            listed = parse_list(current.data if current else None)
        except ValueError as e:
            raise RegistryError(f"{client.host}/{repo}:{tag} is not an image index, so it "
                                f"cannot list the referrers of {subject}; refusing to "
                                "overwrite it") from e
        wanted = merged(listed, entries)
        if wanted is None:
            return  # a read after our write (or before any) holds every entry
        condition = {"If-Match": etag} if etag else (
            {} if current else {"If-None-Match": "*"})
        try:
            client.put_manifest_headers(repo, tag, render_list(wanted), OCI_INDEX, condition)
        except RegistryHTTPError as e:
            if e.status != 412:  # 412: another writer came first; read again
                raise
        sleep(random.uniform(*SETTLE_S))
    raise RegistryError(f"{client.host}/{repo}:{tag}: other writers kept replacing the "
                        f"referrers list of {subject}; {len(entries)} entry(ies) not kept "
                        f"after {ROUNDS} rounds")


def list_referrers(client: RegistryClient, repo: str, subject: str,
                   artifact_type: str | None = None) -> list[Referrer]:
    """The artifacts referring to ``subject`` (of ``artifact_type`` when given)."""
    api = client.referrers(repo, subject, artifact_type)
    if api is not None:
        return of_type(parse_entries(api), artifact_type)
    found, _ = client.find_manifest(repo, fallback_tag(subject))
    try:
        return of_type(parse_list(found.data if found else None), artifact_type)
    except ValueError as e:
        raise RegistryError(f"{client.host}/{repo}:{fallback_tag(subject)} is not an image "
                            "index (the referrers tag schema)") from e


def fetch(client: RegistryClient, repo: str, entry: Referrer) -> Manifest:
    """The artifact manifest behind a referrers-list entry (digest verified)."""
    return client.get_manifest(repo, entry.digest)


def carry_referrers(src: RegistryClient, src_repo: str, subject: str, dst: RegistryClient,
                    dst_repo: str) -> list[str]:
    """Copy every referrer of ``subject`` (test results, promotion records, signatures,
    attestations of other tools) from ``src_repo`` to ``dst_repo``, blobs included, and list
    them there, as ``regctl image copy --referrers`` does; the copied artifacts' digests."""
    from immu_action.adapters.registry.copy import CopyStats, ensure_content

    entries = list_referrers(src, src_repo, subject)
    unlisted = []
    for entry in entries:
        manifest = src.get_manifest(src_repo, entry.digest)
        ensure_content(src, src_repo, manifest, dst, dst_repo, CopyStats())
        _, headers = dst.put_manifest_headers(dst_repo, manifest.digest, manifest.data,
                                              manifest.media_type)
        if headers.get("OCI-Subject") != subject:
            unlisted.append(entry)
    if unlisted:
        add_to_fallback(dst, dst_repo, subject, unlisted)
    return [e.digest for e in entries]
