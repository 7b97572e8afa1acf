"""core.context: GitHub Actions environment + event payload -> GitHubContext."""

from __future__ import annotations

from typing import Any

import pytest

from immu_action.core.context import parse_context
from immu_action.errors import BadInput

SHA = "1" * 40
HEAD = "2" * 40


def env(**extra: str) -> dict[str, str]:
    base = {
        "GITHUB_REPOSITORY": "acme/shop", "GITHUB_SHA": SHA, "GITHUB_REF": "refs/heads/main",
        "GITHUB_REF_NAME": "main", "GITHUB_REF_TYPE": "branch", "GITHUB_EVENT_NAME": "push",
        "GITHUB_RUN_ID": "99", "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_SERVER_URL": "https://github.com", "GITHUB_API_URL": "https://api.github.com",
        "GITHUB_TOKEN": "ghs_x",
    }
    return {**base, **extra}


def pr_event(head_repo: str | None = "acme/shop") -> dict[str, Any]:
    repo = {"full_name": head_repo} if head_repo else None
    return {"number": 7, "repository": {"full_name": "acme/shop"},
            "pull_request": {"number": 7, "head": {"sha": HEAD, "repo": repo}}}


def test_push_to_branch() -> None:
    ctx = parse_context(env(), {})
    assert (ctx.repository, ctx.owner, ctx.sha) == ("acme/shop", "acme", SHA)
    assert (ctx.ref_type, ctx.ref_name, ctx.event_name) == ("branch", "main", "push")
    assert ctx.pr_number is None and not ctx.is_fork and ctx.tag is None
    assert ctx.run_url == "https://github.com/acme/shop/actions/runs/99"
    assert ctx.has_token


def test_token_is_not_in_repr_and_input_token_wins() -> None:
    ctx = parse_context(env(INPUT_GITHUB_TOKEN="ghs_input"), {})
    assert ctx.token == "ghs_input"
    assert "ghs_" not in repr(ctx)


def test_no_token() -> None:
    e = env()
    del e["GITHUB_TOKEN"]
    assert not parse_context(e, {}).has_token


def test_pull_request_uses_head_sha_not_merge_sha() -> None:
    ctx = parse_context(env(GITHUB_EVENT_NAME="pull_request", GITHUB_REF="refs/pull/7/merge",
                            GITHUB_REF_NAME="7/merge"), pr_event())
    assert ctx.sha == HEAD
    assert ctx.pr_number == 7
    assert ctx.ref_type == ""  # a PR merge ref is not a branch of the repository
    assert not ctx.is_fork


@pytest.mark.parametrize("head_repo", ["someone/shop", None])
def test_fork_pull_request(head_repo: str | None) -> None:
    ctx = parse_context(env(GITHUB_EVENT_NAME="pull_request", GITHUB_REF="refs/pull/7/merge"),
                        pr_event(head_repo))
    assert ctx.is_fork


def test_tag_push_and_rerun_attempt_url() -> None:
    ctx = parse_context(env(GITHUB_REF="refs/tags/v1.2.3", GITHUB_REF_NAME="v1.2.3",
                            GITHUB_REF_TYPE="tag", GITHUB_RUN_ATTEMPT="2"), {})
    assert ctx.tag == "v1.2.3"
    assert ctx.run_url.endswith("/actions/runs/99/attempts/2")


def test_ref_name_and_type_derived_from_ref_when_absent() -> None:
    e = env(GITHUB_REF="refs/heads/feature/x")
    del e["GITHUB_REF_NAME"], e["GITHUB_REF_TYPE"]
    ctx = parse_context(e, {})
    assert (ctx.ref_name, ctx.ref_type) == ("feature/x", "branch")


def test_enterprise_server_api_url() -> None:
    e = env(GITHUB_SERVER_URL="https://ghe.example.com/")
    del e["GITHUB_API_URL"]
    assert parse_context(e, {}).api_url == "https://ghe.example.com/api/v3"
    assert parse_context(env(GITHUB_API_URL="https://ghe.example.com/api/v3/"),
                         {}).api_url == "https://ghe.example.com/api/v3"


@pytest.mark.parametrize(("name", "value", "needle"), [
    ("GITHUB_REPOSITORY", "", "GITHUB_REPOSITORY is not set"),
    ("GITHUB_REPOSITORY", "shop", "expected 'owner/name'"),
    ("GITHUB_EVENT_NAME", "", "GITHUB_EVENT_NAME is not set"),
    ("GITHUB_SHA", "", "GITHUB_SHA is not set"),
    ("GITHUB_REF_TYPE", "commit", "expected 'branch' or 'tag'"),
])
def test_bad_environment_names_the_variable(name: str, value: str, needle: str) -> None:
    with pytest.raises(BadInput, match=needle):
        parse_context(env(**{name: value}), {})
