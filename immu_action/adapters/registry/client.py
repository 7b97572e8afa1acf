"""OCI distribution client on ``requests``: manifests and blobs, verified (the formats and
reference grammar are pure, in ``core.manifests`` and ``core.references``).

Every manifest read is verified: the sha256 of the bytes must equal the digest asked
for (or the one the registry announced), else the operation aborts with RegistryError.
Blobs are streamed (GET -> PUT with a fresh iterator per try), never held in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal
from urllib.parse import quote

import requests

from immu_action.adapters.registry.auth import Credentials, load_credentials
from immu_action.adapters.registry.http import Transport
from immu_action.adapters.registry.retry import RETRY_STATUSES, Backoff, RetryPolicy
from immu_action.core.manifests import (
    ACCEPT,
    INDEX_TYPES,
    OCI_INDEX,
    Manifest,
    digest_of,
    parse_manifest,
    verify_digest,
)
from immu_action.core.references import DIGEST_PATTERN, Reference, parse_reference
from immu_action.errors import RegistryError

CHUNK = 1 << 20


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
        return self._manifest(r, repo, ref)

    def _manifest(self, r: requests.Response, repo: str, ref: str) -> Manifest:
        """The verified manifest of a GET's answer."""
        data = r.content
        digest = ref if DIGEST_PATTERN.match(ref) else (
            r.headers.get("Docker-Content-Digest") or digest_of(data))
        what = f"{self.host}/{repo}@{ref}"
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
        return self.put_manifest_headers(repo, ref, data, media_type)[0]

    def put_manifest_headers(self, repo: str, ref: str, data: bytes, media_type: str,
                             headers: dict[str, str] | None = None,
                             ) -> tuple[str, Mapping[str, str]]:
        """``put_manifest`` with extra request headers (conditional writes); returns the
        digest and the answer's headers (``OCI-Subject`` says the registry indexed a
        referrer)."""
        expected = digest_of(data)
        r = self._call("PUT", repo, f"manifests/{ref}", ok=(201,), write=True,
                       headers={"Content-Type": media_type, **(headers or {})}, body=data)
        r.close()
        got = r.headers.get("Docker-Content-Digest") or self.head_manifest(repo, ref)
        if got != expected:
            raise RegistryError(f"{self.host}/{repo}:{ref}: registry stored digest {got}, "
                                f"expected {expected}")
        return expected, r.headers

    def find_manifest(self, repo: str, ref: str) -> tuple[Manifest | None, str | None]:
        """``get_manifest`` that answers (None, None) for a reference that does not exist;
        else the manifest and the answer's ``ETag`` (for a conditional write back)."""
        r = self._call("GET", repo, f"manifests/{ref}", ok=(200, 404),
                       headers={"Accept": ACCEPT})
        if r.status_code == 404:
            r.close()
            return None, None
        return self._manifest(r, repo, ref), r.headers.get("ETag")

    def referrers(self, repo: str, digest: str,
                  artifact_type: str | None = None) -> list[dict[str, Any]] | None:
        """The referrers API's list for ``digest`` (every page), filtered to
        ``artifact_type``; None when the registry has no referrers API (a 404 or another
        refusal the distribution spec names), so the caller reads the fallback tag."""
        page_url: str | None = f"referrers/{digest}" + (
            f"?artifactType={quote(artifact_type, safe='')}" if artifact_type else "")
        found: list[dict[str, Any]] = []
        while page_url:
            r = self._call("GET", repo, page_url, ok=(200, 400, 404, 405, 406))
            kind = r.headers.get("Content-Type", "").split(";")[0].strip()
            if r.status_code != 200 or kind != OCI_INDEX:
                r.close()
                return None
            try:
                entries = r.json().get("manifests") or []
            except (ValueError, AttributeError) as e:
                raise RegistryError(f"{self.host}/{repo}: referrers of {digest} is not an "
                                    "image index") from e
            filtered = "artifactType" in r.headers.get("OCI-Filters-Applied", "")
            found += [e for e in entries if isinstance(e, dict) and (
                filtered or artifact_type is None or e.get("artifactType") == artifact_type)]
            page_url = r.links.get("next", {}).get("url")
        return found

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


__all__ = ["INDEX_TYPES", "Manifest", "Reference", "RegistryClient", "RegistryHTTPError",
           "digest_of", "parse_manifest", "parse_reference", "verify_digest"]
