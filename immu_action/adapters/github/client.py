"""GitHub REST through PyGithub, configured once with bounded retries (issue 4).

Retries: 5xx and connection errors are retried with backoff; 403/429 carrying
``Retry-After`` or ``X-RateLimit-Remaining: 0`` wait as told, up to ``max_wait_s``; a plain
403 is final and becomes ``GitHubPermissionError`` so reporting can degrade instead of fail.
Every PyGithub/requests exception leaves this package as a ``GitHubError`` (exit 4).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from github import Auth, Github, GithubException, GithubRetry
from github.GithubException import RateLimitExceededExceedsMaxWait
from urllib3 import Retry

from immu_action.core.context import GitHubContext
from immu_action.core.summary import CHECK_RUN_NAME
from immu_action.errors import GitHubError

CHECK_RUN_MARK = "immu-action:"
"""Prefix of our check runs' ``external_id``: a check run without it is not ours to edit."""
COMMENT_MARKER = "<!-- immu-action -->"


class GitHubPermissionError(GitHubError):
    """The token may not do this (fork PR, read-only token): report elsewhere, don't fail."""


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Bounds on every GitHub call: attempts, backoff, the longest wait we accept, timeout."""

    attempts: int = 5
    backoff_factor: float = 1.0
    max_wait_s: float = 120.0
    secondary_wait_s: float = 60.0
    timeout_s: int = 30
    seconds_between_writes: float = 0.25


def _told_wait(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds GitHub told us to wait (Retry-After, or a primary limit's reset), if any."""
    after = headers.get("Retry-After")
    if after is not None and after.strip().isdigit():
        return float(after)
    if headers.get("X-RateLimit-Remaining") == "0":
        reset = headers.get("X-RateLimit-Reset", "")
        return max(float(reset) - now, 0.0) + 1.0 if reset.isdigit() else None
    return None


class BoundedRetry(GithubRetry):
    """PyGithub's retry, reading the rate-limit headers first and refusing unbounded waits.

    GithubRetry alone sleeps any ``Retry-After`` however long and only spots a primary limit
    from the message text; here the headers decide and ``max_rate_limit_wait`` bounds it.
    """

    def increment(  # type: ignore[override]
        self, method: str | None = None, url: str | None = None, response: Any = None,
        error: Exception | None = None, _pool: Any = None, _stacktrace: Any = None,
    ) -> Retry:
        if response is not None and response.status in (403, 429):
            wait = _told_wait(response.headers, time.time())
            if wait is None and response.status == 429:
                wait = self.secondary_rate_wait
            if wait is not None:
                limit = self.max_rate_limit_wait or 0.0
                if wait > limit:
                    raise RateLimitExceededExceedsMaxWait(response.status, {
                        "message": f"GitHub asked to wait {wait:.0f}s (limit {limit:.0f}s)"},
                        dict(response.headers), wait=wait)
                retry = Retry.increment(self, method, url, response, error, _pool, _stacktrace)
                retry.get_backoff_time = lambda: wait  # type: ignore[method-assign]
                return retry
        return super().increment(method, url, response, error, _pool, _stacktrace)


def _message(e: GithubException) -> str:
    data = e.data if isinstance(e.data, dict) else {}
    return str(data.get("message") or e.data or "no message")


@contextmanager
def github_call(what: str) -> Iterator[None]:
    """Turn PyGithub/requests failures of ``what`` into ``GitHubError`` subclasses."""
    try:
        yield
    except RateLimitExceededExceedsMaxWait as e:
        raise GitHubError(f"GitHub: {what}: rate limited beyond the wait we accept "
                          f"({_message(e)}); re-run the job later") from e
    except GithubException as e:
        if e.status in (401, 403):
            raise GitHubPermissionError(
                f"GitHub: {what}: HTTP {e.status} {_message(e)}; the token lacks permission "
                "(fork PRs get a read-only token; grant `permissions:` in the workflow)") from e
        raise GitHubError(f"GitHub: {what}: HTTP {e.status} {_message(e)} "
                          "(after retries)") from e
    except requests.RequestException as e:
        raise GitHubError(f"GitHub: {what}: {type(e).__name__}: {e} (after retries)") from e


@dataclass(frozen=True, kw_only=True)
class BranchInfo:
    """What the gate needs about one branch; ``protected`` None when it could not be read."""

    name: str
    protected: bool | None
    head_sha: str | None
    why: str = ""


class GitHubClient:
    """One repository's GitHub API, all calls bounded by one ``RetryPolicy``."""

    def __init__(self, *, api_url: str, token: str, repository: str,
                 policy: RetryPolicy = RetryPolicy()) -> None:
        retry = BoundedRetry(
            total=policy.attempts, backoff_factor=policy.backoff_factor,
            status_forcelist=[*range(500, 600), 429], raise_on_status=False,
            allowed_methods=frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"}),
            secondary_rate_wait=policy.secondary_wait_s, max_rate_limit_wait=policy.max_wait_s)
        self.gh = Github(base_url=api_url, auth=Auth.Token(token), retry=retry,
                         timeout=policy.timeout_s, lazy=True, per_page=100,
                         seconds_between_requests=None,
                         seconds_between_writes=policy.seconds_between_writes or None)
        self.repository = repository
        self.repo = self.gh.get_repo(repository)  # lazy: no request

    def _raw(self, verb: str, path: str) -> Any:
        """A request PyGithub has no method for, through its (retrying) requester."""
        _, data = self.gh.requester.requestJsonAndCheck(verb, f"{self.repo.url}{path}")
        return data

    def create_status(self, sha: str, *, state: str, context: str, description: str,
                      target_url: str) -> None:
        """A commit status (description cut to GitHub's 140 characters)."""
        with github_call(f"set commit status {context!r} on {sha[:12]}"):
            self.repo.get_commit(sha).create_status(
                state=state, context=context, description=description[:140],
                target_url=target_url)

    def upsert_check_run(self, *, sha: str, title: str, summary: str, conclusion: str,
                         details_url: str, annotations: Sequence[Mapping[str, Any]],
                         name: str = CHECK_RUN_NAME, batch: int = 50) -> tuple[int, str]:
        """Create or update our check run ``name`` on ``sha``; returns (id, html_url).

        Only a check run we made is edited: it carries ``CHECK_RUN_MARK`` in ``external_id``
        (a job's own check run may share the name; it is never touched). GitHub appends
        annotations on every update and cannot delete them, so a re-run that carries the same
        annotations (fingerprint in ``external_id``) sends none, and one with different
        annotations starts a fresh check run rather than mixing both sets.
        """
        fingerprint = CHECK_RUN_MARK + hashlib.sha256(json.dumps(
            list(annotations), sort_keys=True).encode()).hexdigest()[:32]
        with github_call(f"update check run {name!r} on {sha[:12]}"):
            runs = [r for r in self.repo.get_commit(sha).get_check_runs(check_name=name)
                    if (r.external_id or "").startswith(CHECK_RUN_MARK)]
            # The newest one: an older run may hold a previous set of annotations.
            existing = max(runs, key=lambda r: r.id, default=None)
            if existing is not None and existing.output.annotations_count and (
                    existing.external_id != fingerprint):
                existing = None
            todo = [] if existing is not None and existing.output.annotations_count else list(
                annotations)
            chunks = [todo[i:i + batch] for i in range(0, len(todo), batch)] or [[]]
            fields: dict[str, Any] = {
                "status": "completed", "conclusion": conclusion, "details_url": details_url,
                "external_id": fingerprint}
            for i, chunk in enumerate(chunks):
                output: dict[str, Any] = {"title": title, "summary": summary,
                                          "annotations": chunk}
                if existing is None:
                    existing = self.repo.create_check_run(
                        name=name, head_sha=sha, output=output, **fields)
                else:
                    existing.edit(output=output, **(fields if i == 0 else {}))
            assert existing is not None  # chunks is never empty
            return int(existing.id), str(existing.html_url or details_url)

    def upsert_comment(self, number: int, body: str, marker: str = COMMENT_MARKER) -> int:
        """The one PR comment carrying ``marker``: edited if found, else created."""
        text = body if marker in body else f"{marker}\n{body}"
        with github_call(f"write the comment on pull request #{number}"):
            issue = self.repo.get_issue(number)
            for comment in issue.get_comments():
                if marker in (comment.body or ""):
                    comment.edit(text)
                    return int(comment.id)
            return int(issue.create_comment(text).id)

    def branch_info(self, branch: str) -> BranchInfo:
        """Protection and head of ``branch``: ``protected`` flag, else active rules.

        ``/protection`` needs admin (GITHUB_TOKEN never has it), so the branch's own flag and
        the rules endpoint are what we can read. Any error: unknown, which the gate refuses.
        """
        path = quote(branch, safe="")
        try:
            with github_call(f"read branch {branch!r}"):
                data = self._raw("GET", f"/branches/{path}")
                head = str(data["commit"]["sha"])
                if data.get("protected") is True:
                    return BranchInfo(name=branch, protected=True, head_sha=head)
                rules = self._raw("GET", f"/rules/branches/{path}")
        except GitHubError as e:
            return BranchInfo(name=branch, protected=None, head_sha=None, why=str(e))
        return BranchInfo(name=branch, protected=bool(rules), head_sha=head,
                          why="" if rules else "no branch protection and no active rules")

    def is_reachable(self, sha: str, branch: str) -> bool:
        """True when ``sha`` is on ``branch`` (compare: behind or identical); False on error."""
        try:
            with github_call(f"compare {branch!r} with {sha[:12]}"):
                data = self._raw("GET", f"/compare/{quote(branch, safe='')}...{sha}")
        except GitHubError:
            return False
        return data.get("status") in ("behind", "identical")


def client_for(ctx: GitHubContext, policy: RetryPolicy = RetryPolicy()) -> GitHubClient | None:
    """The client for this run (``GITHUB_API_URL``, token, repository); None without a token.

    Builds the session only: no request is made until a method is called.
    """
    if not ctx.has_token:
        return None
    return GitHubClient(api_url=ctx.api_url, token=ctx.token, repository=ctx.repository,
                        policy=policy)
