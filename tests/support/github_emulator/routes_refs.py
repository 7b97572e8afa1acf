"""Route handlers for deployments, branches, rules and compare (see routes.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from tests.support.github_emulator.routes import HttpError, _repo, route

if TYPE_CHECKING:
    from tests.support.github_emulator.server import GitHubEmulator


@route("POST", "/repos/{owner}/{repo}/deployments")
def create_deployment(emu: GitHubEmulator, args: list[str], q: dict[str, str], body: Any
                      ) -> tuple[int, Any]:
    base = _repo(emu, args)
    resolved = emu.state.resolve(body["ref"])
    if resolved is None:
        raise HttpError(422, f"No ref found for: {body['ref']}")
    required = body.get("required_contexts")
    states = emu.state.statuses_for(resolved[0])
    if any(s != "success" for c, s in states.items() if required is None or c in required):
        raise HttpError(409, "Conflict: Commit status checks failed for " + body["ref"])
    ident = emu.state.next_id()
    deployment = emu.spec.skeleton(
        "deployment", id=ident, sha=resolved[0], ref=body["ref"], task=body.get("task", "deploy"),
        environment=body.get("environment", "production"), payload=body.get("payload", {}),
        description=body.get("description"), url=f"{base}/deployments/{ident}",
        statuses_url=f"{base}/deployments/{ident}/statuses", repository_url=base)
    emu.state.deployments[ident] = deployment
    return 201, deployment


@route("POST", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses")
def create_deployment_status(emu: GitHubEmulator, args: list[str], q: dict[str, str],
                             body: Any) -> tuple[int, Any]:
    base, deployment_id = _repo(emu, args), int(args[2])
    if deployment_id not in emu.state.deployments:
        raise HttpError(404, "Not Found")
    ident = emu.state.next_id()
    status = emu.spec.skeleton(
        "deployment-status", id=ident, state=body["state"],
        description=body.get("description", ""), log_url=body.get("log_url", ""),
        environment_url=body.get("environment_url", ""),
        url=f"{base}/deployments/{deployment_id}/statuses/{ident}",
        deployment_url=f"{base}/deployments/{deployment_id}", repository_url=base)
    emu.state.deployment_statuses.setdefault(deployment_id, []).append(status)
    return 201, status


def _commit(emu: GitHubEmulator, base: str, sha: str) -> dict[str, Any]:
    return emu.spec.skeleton("commit", sha=sha, url=f"{base}/commits/{sha}")


@route("GET", "/repos/{owner}/{repo}/branches/{branch}")
def get_branch(emu: GitHubEmulator, args: list[str], q: dict[str, str], body: Any
               ) -> tuple[int, Any]:
    base = _repo(emu, args)
    branch = emu.state.branches.get(unquote(args[2]))
    if branch is None:
        raise HttpError(404, "Branch not found")
    return 200, emu.spec.skeleton(
        "branch-with-protection", name=branch.name, protected=branch.protected,
        commit=_commit(emu, base, branch.sha),
        protection_url=f"{base}/branches/{branch.name}/protection")


@route("GET", "/repos/{owner}/{repo}/rules/branches/{branch}")
def branch_rules(emu: GitHubEmulator, args: list[str], q: dict[str, str], body: Any
                 ) -> tuple[int, Any]:
    _repo(emu, args)
    branch = emu.state.branches.get(unquote(args[2]))
    # GitHub answers 200 [] for a branch without rules (even an unknown one).
    return 200, list(branch.rules) if branch else []


@route("GET", "/repos/{owner}/{repo}/compare/{basehead}")
def compare(emu: GitHubEmulator, args: list[str], q: dict[str, str], body: Any
            ) -> tuple[int, Any]:
    base_url = _repo(emu, args)
    base_ref, sep, head_ref = unquote(args[2]).partition("...")
    base, head = emu.state.resolve(base_ref), emu.state.resolve(head_ref)
    if not sep or base is None or head is None:
        raise HttpError(404, "Not Found")
    (base_sha, base_hist), (head_sha, head_hist) = base, head
    if base_sha == head_sha:
        status, ahead, behind, merge_base = "identical", 0, 0, base_sha
    elif head_sha in base_hist:
        status, ahead, behind = "behind", 0, len(base_hist) - base_hist.index(head_sha) - 1
        merge_base = head_sha
    elif base_sha in head_hist:
        status, ahead, behind = "ahead", len(head_hist) - head_hist.index(base_sha) - 1, 0
        merge_base = base_sha
    else:
        common = [s for s in base_hist if s in head_hist]
        merge_base = common[-1] if common else base_hist[0]
        status, ahead, behind = "diverged", 1, 1
    return 200, emu.spec.skeleton(
        "commit-comparison", status=status, ahead_by=ahead, behind_by=behind,
        total_commits=ahead, base_commit=_commit(emu, base_url, base_sha),
        merge_base_commit=_commit(emu, base_url, merge_base),
        url=f"{base_url}/compare/{args[2]}")
