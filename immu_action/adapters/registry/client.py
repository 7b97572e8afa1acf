"""OCI distribution client on ``requests``: references, manifests, blobs, verification.

Every manifest read is verified: the sha256 of the bytes must equal the digest asked
for (or the one the registry announced), else the operation aborts with RegistryError.
Blobs are streamed (GET -> PUT with a fresh iterator per try), never held in memory.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import requests

from immu_action.adapters.registry.auth import DOCKER_HUB_HOSTS, Credentials, load_credentials
from immu_action.adapters.registry.http import (
    RETRY_STATUSES,
    Backoff,
    RetryPolicy,
    Transport,
)
from immu_action.core.tags import TAG_PATTERN
from immu_action.errors import BadInput, RegistryError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
CHUNK = 1 << 20

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPO = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
DIGEST_PATTERN = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")


@dataclass(frozen=True, kw_only=True)
class Reference:
    """``host[:port]/repo[:tag][@digest]`` split into its parts."""

    host: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        text = f"{self.host}/{self.repository}"
        text += f":{self.tag}" if self.tag else ""
        return text + (f"@{self.digest}" if self.digest else "")


def parse_reference(text: str, *, default_host: str | None = None) -> Reference:
    """Parse an image reference; without a host part, ``default_host`` is used."""
    rest, _, digest = text.strip().partition("@")
    if digest and not DIGEST_PATTERN.match(digest):
        raise BadInput(f"{text!r}: digest {digest!r} is not sha256:<64 hex> or sha512:<128 hex>")
    head, _, last = rest.rpartition("/")
    tag = None
    if ":" in last:
        last, tag = last.split(":", 1)
    path = f"{head}/{last}" if head else last
    first, _, remainder = path.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        host, repo = first, remainder
    elif default_host:
        host, repo = default_host, path
    else:
        raise BadInput(f"{text!r}: name the registry host, e.g. registry.example.com/team/app")
    if host.lower() in DOCKER_HUB_HOSTS and "/" not in repo:
        repo = f"library/{repo}"  # Docker Hub's official images: docker.io/alpine
    if not _REPO.match(repo):
        raise BadInput(f"{text!r}: repository {repo!r} must be lowercase path components "
                       "of [a-z0-9] separated by '.', '_', '__', '-' or '/'")
    if tag is not None and not TAG_PATTERN.match(tag):
        raise BadInput(f"{text!r}: tag {tag!r} must match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}")
    return Reference(host=host, repository=repo, tag=tag, digest=digest or None)


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


class RegistryHTTPError(RegistryError):
    """The registry answered an unexpected status; ``code`` is its error code if it sent one."""

    def __init__(self, message: str, *, status: int, code: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _error_code(response: requests.Response) -> tuple[str | None, str]:
    """The registry's ``errors[0]`` code and `` CODE: message`` text, when it sent one."""
    try:
        first = response.json()["errors"][0]
        return str(first.get("code")), f" {first.get('code')}: {first.get('message')}"
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None, ""


def _error_detail(response: requests.Response) -> str:
    return _error_code(response)[1]


class RegistryClient:
    """Manifest and blob operations against one registry host."""

    def __init__(self, host: str, *, credentials: Credentials | None, insecure: bool = False,
                 retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.host = host
        self.transport = Transport(host, credentials=credentials, insecure=insecure,
                                   retry=retry, sleep=sleep)

    @classmethod
    def for_host(cls, host: str, *, insecure: bool = False) -> RegistryClient:
        """A client with credentials from the environment or the Docker config."""
        return cls(host, credentials=load_credentials(host), insecure=insecure)

    def __repr__(self) -> str:
        return f"RegistryClient({self.transport!r})"

    def _call(self, method: str, repo: str, path: str, *, ok: Iterable[int],
              write: bool = False, extra_scope: tuple[str, ...] = (),
              **kwargs: Any) -> requests.Response:
        scope = (f"repository:{repo}:{'pull,push' if write else 'pull'}", *extra_scope)
        # ``path`` is relative to the repository, or a URL the registry gave (Link, Location)
        url = path if path.startswith(("/", "http://", "https://")) else f"/v2/{repo}/{path}"
        response = self.transport.request(method, url, scope=scope, write=write, **kwargs)
        if response.status_code not in set(ok):
            code, detail = _error_code(response)
            response.close()
            raise RegistryHTTPError(f"{self.host}/{repo}: {method} {path} answered HTTP "
                                    f"{response.status_code}{detail}",
                                    status=response.status_code, code=code)
        return response

    def will_read(self, repo: str) -> None:
        """Announce reads of ``repo``, so the promotion's one token covers them too."""
        self.transport.will_read(repo)

    def will_write(self, repo: str) -> None:
        """Announce writes to ``repo`` so one pull,push token covers reads and writes."""
        self.transport.will_write(repo)

    def get_manifest(self, repo: str, ref: str) -> Manifest:
        """GET a manifest by tag or digest; its sha256 must match the digest."""
        r = self._call("GET", repo, f"manifests/{ref}", ok=(200,), headers={"Accept": ACCEPT})
        data = r.content
        digest = ref if DIGEST_PATTERN.match(ref) else r.headers.get("Docker-Content-Digest")
        what = f"{self.host}/{repo}@{ref}"
        if digest is None:
            digest = digest_of(data)
        verify_digest(data, digest, what)
        media_type = r.headers.get("Content-Type", "").split(";")[0].strip()
        media_type = str(parse_manifest(data, what).get("mediaType") or media_type)
        return Manifest(data=data, media_type=media_type, digest=digest)

    def head_manifest(self, repo: str, ref: str) -> str | None:
        """The digest a tag or digest resolves to, or None when it does not exist."""
        r = self._call("HEAD", repo, f"manifests/{ref}", ok=(200, 404),
                       headers={"Accept": ACCEPT})
        if r.status_code == 404:
            return None
        digest = r.headers.get("Docker-Content-Digest")
        if not digest:
            raise RegistryError(f"{self.host}/{repo}:{ref}: HEAD gave no Docker-Content-Digest")
        return digest

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        """PUT manifest bytes under a tag or digest; the registry's digest must be ours.

        The registry states what it stored in the PUT's ``Docker-Content-Digest``; one that
        does not say is asked with a HEAD of the reference afterwards.
        """
        expected = digest_of(data)
        r = self._call("PUT", repo, f"manifests/{ref}", ok=(201,), write=True,
                       headers={"Content-Type": media_type}, body=data)
        r.close()
        got = r.headers.get("Docker-Content-Digest") or self.head_manifest(repo, ref)
        if got != expected:
            raise RegistryError(f"{self.host}/{repo}:{ref}: registry stored digest {got}, "
                                f"expected {expected}")
        return expected

    def list_tags(self, repo: str, *, after: str | None = None,
                  page: int = 1000) -> Iterator[str]:
        """Tags of ``repo`` (none when it does not exist), following ``Link`` pagination.

        ``after`` asks for the tags lexically after it (the ``last`` parameter); registries
        that do not paginate (distribution 2.8) ignore it and send every tag.
        """
        page_url: str | None = f"tags/list?n={page}" + (
            f"&last={quote(after, safe='')}" if after else "")
        while page_url:
            r = self._call("GET", repo, page_url, ok=(200, 404))
            if r.status_code == 404:
                r.close()
                return
            try:
                names = r.json().get("tags") or []
            except (ValueError, AttributeError) as e:
                raise RegistryError(f"{self.host}/{repo}: tags/list did not answer a JSON "
                                    "object with a tags list") from e
            yield from (str(name) for name in names)
            page_url = r.links.get("next", {}).get("url")

    def blob_exists(self, repo: str, digest: str) -> bool:
        """True when the repository already links the blob (no upload needed)."""
        return self._call("HEAD", repo, f"blobs/{digest}", ok=(200, 404)).status_code == 200

    def blob_stream(self, repo: str, digest: str) -> Callable[[], Iterator[bytes]]:
        """A factory of fresh streaming iterators over a blob (one GET per call)."""
        def open_stream() -> Iterator[bytes]:
            r = self._call("GET", repo, f"blobs/{digest}", ok=(200,), stream=True)
            try:
                yield from r.iter_content(CHUNK)
            finally:
                r.close()
        return open_stream

    def upload_blob(self, repo: str, digest: str, body: bytes | Callable[[], Iterable[bytes]],
                    location: str | None = None) -> None:
        """Monolithic upload (POST then PUT ?digest=); the registry checks the digest.

        A failed PUT is never re-sent to its upload session: the registry may have kept part
        of the body (the retry would append to it) or finished the session (404). Each try
        opens a new session instead, within the transport's retry policy.
        """
        backoff = Backoff(self.transport.retry, self.transport.sleep)
        while True:
            attempt = backoff.next_try()
            if location is None:
                opened = self._call("POST", repo, "blobs/uploads/", ok=(202,), write=True)
                location = opened.headers["Location"]
                opened.close()
            sep = "&" if "?" in location else "?"
            put = self.transport.request_once(
                "PUT", f"{location}{sep}digest={digest}", write=True, body=body,
                scope=(f"repository:{repo}:pull,push",),
                headers={"Content-Type": "application/octet-stream"})
            if put is None:
                status, detail, retry_after = None, "", None
            else:
                status, detail = put.status_code, _error_detail(put)
                retry_after = put.headers.get("Retry-After")
                put.close()
                if status == 201:
                    return
            session_lost = status == 404 and "BLOB_UPLOAD_UNKNOWN" in detail
            if not (status is None or status in RETRY_STATUSES or session_lost) \
                    or backoff.last_try:
                failed = f"HTTP {status}{detail}" if status else "no connection"
                raise RegistryError(f"{self.host}/{repo}: upload of {digest} failed "
                                    f"({failed}) after {attempt} upload session(s)")
            if not backoff.pause(retry_after):
                raise RegistryError(f"{self.host}/{repo}: gave up uploading {digest} after "
                                    f"{attempt} upload sessions and {backoff.waited:.1f}s "
                                    "of backoff")
            location = None  # a new session for the next try

    def mount_blob(self, repo: str, digest: str, from_repo: str, body: bytes | None = None,
                   ) -> Literal["mounted", "copied"]:
        """Cross-repository mount; on 202 upload ``body`` or stream the blob from ``from_repo``
        into the opened upload."""
        scope = (f"repository:{from_repo}:pull",)
        r = self._call("POST", repo, f"blobs/uploads/?mount={digest}&from={from_repo}",
                       ok=(201, 202), write=True, extra_scope=scope)
        r.close()
        if r.status_code == 201:
            return "mounted"
        self.upload_blob(repo, digest, body if body is not None
                         else self.blob_stream(from_repo, digest), location=r.headers["Location"])
        return "copied"
