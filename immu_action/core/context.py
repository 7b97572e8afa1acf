"""The GitHub Actions run as one frozen value, parsed from the environment and event (pure).

The caller passes a mapping (``os.environ``) and the already-loaded event payload; nothing
here reads files or the process environment, so every rule is unit-testable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from immu_action.errors import BadInput

RefType = Literal["branch", "tag", ""]
PR_EVENTS = ("pull_request", "pull_request_target")


@dataclass(frozen=True, kw_only=True)
class GitHubContext:
    """What a run needs to know about where it runs; ``token`` never appears in ``repr``."""

    repository: str  # owner/name
    sha: str  # the commit under test: the PR head for pull_request events
    ref: str  # refs/heads/main, refs/tags/v1.2.3, refs/pull/7/merge
    ref_name: str
    ref_type: RefType
    event_name: str
    run_id: str
    run_attempt: str
    server_url: str
    api_url: str
    pr_number: int | None = None
    is_fork: bool = False
    actor: str = ""
    token: str = field(default="", repr=False)

    @property
    def owner(self) -> str:
        """The repository owner."""
        return self.repository.split("/", 1)[0]

    @property
    def has_token(self) -> bool:
        """True when a token was provided (it may still be read-only)."""
        return bool(self.token)

    @property
    def run_url(self) -> str:
        """The Actions run page: target URL of statuses and check-run details."""
        url = f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"
        return url + (f"/attempts/{self.run_attempt}" if self.run_attempt not in ("", "1") else "")

    @property
    def tag(self) -> str | None:
        """The tag name on a tag push, else None."""
        return self.ref_name if self.ref_type == "tag" else None


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise BadInput(f"environment variable {name} is not set: run inside GitHub Actions "
                       f"or set it (e.g. {name}=...)")
    return value


def _ref_parts(env: Mapping[str, str], ref: str) -> tuple[str, RefType]:
    """``GITHUB_REF_NAME``/``GITHUB_REF_TYPE``, derived from ``ref`` when absent."""
    if ref.startswith("refs/heads/"):
        derived: tuple[str, RefType] = (ref.removeprefix("refs/heads/"), "branch")
    elif ref.startswith("refs/tags/"):
        derived = (ref.removeprefix("refs/tags/"), "tag")
    else:
        derived = (ref.rsplit("/", 1)[-1] if ref else "", "")
    kind = env.get("GITHUB_REF_TYPE", "")
    if kind not in ("branch", "tag", ""):
        raise BadInput(f"GITHUB_REF_TYPE={kind!r}: expected 'branch' or 'tag'")
    if kind and ref.startswith("refs/pull/"):
        kind = ""  # a PR merge ref is reported as "branch" but is no branch of the repo
    name = env.get("GITHUB_REF_NAME") or derived[0]
    return name, (kind or derived[1])  # type: ignore[return-value]


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _pull_request(event: Mapping[str, Any], repository: str) -> tuple[int | None, str, bool]:
    """(number, head sha, is_fork) from a pull_request payload; ``(None, "", False)`` else."""
    pr = event.get("pull_request")
    if not isinstance(pr, Mapping):
        return None, "", False
    head = _mapping(pr.get("head"))
    head_repo = _mapping(head.get("repo"))
    # A deleted fork leaves head.repo null: treat as a fork (least privilege).
    fork = not head_repo or head_repo.get("full_name") != repository
    number = pr.get("number", event.get("number"))
    return (number if isinstance(number, int) else None), str(head.get("sha") or ""), fork


def parse_context(env: Mapping[str, str], event: Mapping[str, Any]) -> GitHubContext:
    """Build the context from a GitHub Actions environment and its event payload.

    Raises ``BadInput`` naming the missing variable when the basics are absent.
    """
    repository = _required(env, "GITHUB_REPOSITORY")
    if repository.count("/") != 1:
        raise BadInput(f"GITHUB_REPOSITORY={repository!r}: expected 'owner/name'")
    event_name = _required(env, "GITHUB_EVENT_NAME")
    ref = env.get("GITHUB_REF", "")
    ref_name, ref_type = _ref_parts(env, ref)
    number, head_sha, fork = (None, "", False)
    if event_name in PR_EVENTS:
        number, head_sha, fork = _pull_request(event, repository)
    server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    api = env.get("GITHUB_API_URL") or (
        "https://api.github.com" if server == "https://github.com" else f"{server}/api/v3")
    return GitHubContext(
        repository=repository,
        sha=head_sha or _required(env, "GITHUB_SHA"),
        ref=ref, ref_name=ref_name, ref_type=ref_type, event_name=event_name,
        run_id=env.get("GITHUB_RUN_ID", ""), run_attempt=env.get("GITHUB_RUN_ATTEMPT", "1"),
        server_url=server, api_url=api.rstrip("/"), pr_number=number, is_fork=fork,
        actor=env.get("GITHUB_ACTOR", ""),
        token=env.get("INPUT_GITHUB_TOKEN") or env.get("GITHUB_TOKEN") or "",
    )
