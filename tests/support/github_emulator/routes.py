"""Route handlers: each takes the path arguments, query and body and returns (status, body).

Objects are built from the OpenAPI skeleton of their component, overlaid with real state, so
the response validator checks the emulator as strictly as it checks the client.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from tests.support.github_emulator.server import GitHubEmulator

Handler = Callable[["GitHubEmulator", list[str], dict[str, str], Any], tuple[int, Any]]
ROUTES: dict[tuple[str, str], Handler] = {}
NOW = "2026-11-26T00:00:00Z"


class HttpError(Exception):
    """An error answer (404, 409, 422) with GitHub's error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def route(method: str, template: str) -> Callable[[Handler], Handler]:
    """Register a handler for an operation of the OpenAPI subset."""
    def wrap(fn: Handler) -> Handler:
        ROUTES[(method, template)] = fn
        return fn
    return wrap


def _repo(emu: GitHubEmulator, args: list[str]) -> str:
    if f"{args[0]}/{args[1]}" != emu.state.full_name:
        raise HttpError(404, "Not Found")
    return f"{emu.url}/repos/{emu.state.full_name}"


def _found(table: dict[int, Any], key: str) -> Any:
    """The entry ``key`` (a path segment) of ``table``, or GitHub's 404."""
    entry = table.get(int(key))
    if entry is None:
        raise HttpError(404, "Not Found")
    return entry


@route("POST", "/repos/{owner}/{repo}/statuses/{sha}")
def create_status(emu: GitHubEmulator, args: list[str], q: dict[str, str], body: Any
                  ) -> tuple[int, Any]:
    base, ident = _repo(emu, args), emu.state.next_id()
    status = emu.spec.skeleton("status", id=ident, url=f"{base}/statuses/{args[2]}",
                               state=body["state"], context=body.get("context", "default"),
                               description=body.get("description"),
                               target_url=body.get("target_url"))
    emu.state.statuses.append({**status, "sha": args[2]})
    return 201, status


ACTIONS_APP = {"id": 15368, "slug": "github-actions", "name": "GitHub Actions"}


def new_check_run(emu: GitHubEmulator, *, name: str, head_sha: str, status: str,
                  external_id: str | None) -> dict[str, Any]:
    """A check run as GitHub makes it. Like every check run made with a workflow token, it is
    the Actions app's and lands in the commit's Actions check suite (not necessarily the
    calling workflow's: GitHub picks one)."""
    base, ident = f"{emu.url}/repos/{emu.state.full_name}", emu.state.next_id()
    suite = emu.state.suites.setdefault(head_sha, emu.state.next_id())
    run = emu.spec.skeleton(
        "check-run", id=ident, name=name, head_sha=head_sha, external_id=external_id,
        url=f"{base}/check-runs/{ident}", html_url=f"{emu.web_url}/runs/{ident}",
        status=status, conclusion=None, started_at=NOW, completed_at=None,
        app=ACTIONS_APP, check_suite={"id": suite},
        output={"title": None, "summary": None, "text": None, "annotations_count": 0,
                "annotations_url": f"{base}/check-runs/{ident}/annotations"})
    emu.state.check_runs[ident] = run
    return run


@route("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs")
def list_check_runs(emu: GitHubEmulator, args: list[str], q: dict[str, str], body: Any
                    ) -> tuple[int, Any]:
    _repo(emu, args)
    runs = [r for r in emu.state.check_runs.values() if r["head_sha"] == args[2]
            and ("check_name" not in q or r["name"] == q["check_name"])]
    return 200, {"total_count": len(runs), "check_runs": runs}


def _apply_check_run(emu: GitHubEmulator, run: dict[str, Any], body: dict[str, Any]) -> None:
    for key in ("name", "status", "conclusion", "details_url", "external_id",
                "started_at", "completed_at"):
        if key in body:
            run[key] = body[key]
    output = body.get("output")
    if output:
        notes = emu.state.annotations.setdefault(run["id"], [])
        notes.extend(output.get("annotations", []))  # GitHub appends across updates
        run["output"].update(title=output.get("title"), summary=output.get("summary"),
                             text=output.get("text"), annotations_count=len(notes))
    if run["status"] == "completed" and not run.get("completed_at"):
        run["completed_at"] = NOW


@route("POST", "/repos/{owner}/{repo}/check-runs")
def create_check_run(emu: GitHubEmulator, args: list[str], q: dict[str, str], body: Any
                     ) -> tuple[int, Any]:
    _repo(emu, args)
    run = new_check_run(emu, name=body["name"], head_sha=body["head_sha"],
                        status=body.get("status", "queued"), external_id=None)
    _apply_check_run(emu, run, body)
    return 201, run


@route("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}")
def update_check_run(emu: GitHubEmulator, args: list[str], q: dict[str, str], body: Any
                     ) -> tuple[int, Any]:
    _repo(emu, args)
    run = _found(emu.state.check_runs, args[2])
    if run["id"] in emu.state.jobs:
        # GitHub allows it (the workflow token is the Actions app, which owns the job's check
        # run), and it overwrites the job's own status on the PR: a test that does it fails.
        emu.violations.append(f"PATCH check run {run['id']}: that is the check run of the "
                              f"workflow job {emu.state.jobs[run['id']]!r}, not ours to edit")
    _apply_check_run(emu, run, body)
    return 200, run


@route("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
def list_comments(emu: GitHubEmulator, args: list[str], q: dict[str, str], body: Any
                  ) -> tuple[int, Any]:
    _repo(emu, args)
    issue = int(args[2])
    return 200, [c for i, c in emu.state.comments.items() if emu.state.comment_issue[i] == issue]


@route("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
def create_comment(emu: GitHubEmulator, args: list[str], q: dict[str, str], body: Any
                   ) -> tuple[int, Any]:
    base, ident = _repo(emu, args), emu.state.next_id()
    comment = emu.spec.skeleton("issue-comment", id=ident, body=body["body"],
                                url=f"{base}/issues/comments/{ident}",
                                html_url=f"{emu.web_url}/pull/{args[2]}#issuecomment-{ident}",
                                issue_url=f"{base}/issues/{args[2]}")
    emu.state.comments[ident] = comment
    emu.state.comment_issue[ident] = int(args[2])
    return 201, comment


@route("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
def update_comment(emu: GitHubEmulator, args: list[str], q: dict[str, str], body: Any
                   ) -> tuple[int, Any]:
    _repo(emu, args)
    comment = _found(emu.state.comments, args[2])
    comment["body"] = body["body"]
    return 200, comment


def _release_view(emu: GitHubEmulator, ident: int) -> dict[str, Any]:
    release = dict(emu.state.releases[ident])
    release["assets"] = [a for i, a in emu.state.assets.items()
                         if emu.state.asset_release[i] == ident]
    return release


@route("GET", "/repos/{owner}/{repo}/releases/tags/{tag}")
def release_by_tag(emu: GitHubEmulator, args: list[str], q: dict[str, str], body: Any
                   ) -> tuple[int, Any]:
    _repo(emu, args)
    for ident, release in emu.state.releases.items():
        if release["tag_name"] == unquote(args[2]):
            return 200, _release_view(emu, ident)
    raise HttpError(404, "Not Found")


@route("POST", "/repos/{owner}/{repo}/releases")
def create_release(emu: GitHubEmulator, args: list[str], q: dict[str, str], body: Any
                   ) -> tuple[int, Any]:
    base, ident = _repo(emu, args), emu.state.next_id()
    if any(r["tag_name"] == body["tag_name"] for r in emu.state.releases.values()):
        raise HttpError(422, "Validation Failed: tag_name already_exists")
    emu.state.releases[ident] = emu.spec.skeleton(
        "release", id=ident, tag_name=body["tag_name"], name=body.get("name"),
        body=body.get("body"), draft=body.get("draft", False),
        prerelease=body.get("prerelease", False), url=f"{base}/releases/{ident}",
        html_url=f"{emu.web_url}/releases/tag/{body['tag_name']}",
        assets_url=f"{base}/releases/{ident}/assets",
        upload_url=f"{base}/releases/{ident}/assets{{?name,label}}")
    return 201, _release_view(emu, ident)


@route("PATCH", "/repos/{owner}/{repo}/releases/{release_id}")
def update_release(emu: GitHubEmulator, args: list[str], q: dict[str, str], body: Any
                   ) -> tuple[int, Any]:
    _repo(emu, args)
    release = _found(emu.state.releases, args[2])
    for key in ("tag_name", "name", "body", "draft", "prerelease"):
        if key in body:
            release[key] = body[key]
    return 200, _release_view(emu, int(args[2]))


@route("POST", "/repos/{owner}/{repo}/releases/{release_id}/assets")
def upload_asset(emu: GitHubEmulator, args: list[str], q: dict[str, str], body: Any
                 ) -> tuple[int, Any]:
    base, release_id = _repo(emu, args), int(args[2])
    if release_id not in emu.state.releases:
        raise HttpError(404, "Not Found")
    if any(a["name"] == q["name"] and emu.state.asset_release[i] == release_id
           for i, a in emu.state.assets.items()):
        raise HttpError(422, "Validation Failed: name already_exists")  # as GitHub does
    ident, data = emu.state.next_id(), bytes(body or b"")
    asset = emu.spec.skeleton(
        "release-asset", id=ident, name=q["name"], label=q.get("label"), size=len(data),
        digest=f"sha256:{hashlib.sha256(data).hexdigest()}",
        state="uploaded", url=f"{base}/releases/assets/{ident}",
        browser_download_url=f"{emu.url}/download/{ident}/{q['name']}")
    emu.state.assets[ident], emu.state.asset_bytes[ident] = asset, data
    emu.state.asset_release[ident] = release_id
    return 201, asset


@route("DELETE", "/repos/{owner}/{repo}/releases/assets/{asset_id}")
def delete_asset(emu: GitHubEmulator, args: list[str], q: dict[str, str], body: Any
                 ) -> tuple[int, Any]:
    _repo(emu, args)
    ident = int(args[2])
    if emu.state.assets.pop(ident, None) is None:
        raise HttpError(404, "Not Found")
    emu.state.asset_bytes.pop(ident), emu.state.asset_release.pop(ident)
    return 204, None
