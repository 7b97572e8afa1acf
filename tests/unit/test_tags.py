"""Tag validation and template rendering (pure)."""

from __future__ import annotations

import pytest

from immu_action.core.tags import RefInfo, ref_info, render_tags, sanitise_branch, tag_problem

SHA = "0123456789abcdef0123456789abcdef01234567"
TEMPLATES = ["{version}", "{major}.{minor}", "{major}", "latest", "sha-{short_sha}", "{branch}"]


@pytest.mark.parametrize("tag", ["latest", "v1.2.3", "_x", "A" * 128, "1.0-rc.1", "a_b.c-d"])
def test_valid_tags(tag: str) -> None:
    assert tag_problem(tag) is None


@pytest.mark.parametrize("tag", ["", ".x", "-x", "A" * 129, "a/b", "a:b", "a b", "é"])
def test_invalid_tags_say_what_is_valid(tag: str) -> None:
    problem = tag_problem(tag)
    assert problem is not None and repr(tag) in problem and "[A-Za-z0-9_]" in problem


def test_release_tag_renders_every_semver_part() -> None:
    out = render_tags(TEMPLATES, ref_info("refs/tags/v1.2.3", SHA))
    assert out.tags == ("1.2.3", "1.2", "1", "latest", "sha-0123456")
    assert out.skipped == (("{branch}", "the ref is not a branch"),)


def test_unprefixed_version_and_patch() -> None:
    out = render_tags(["{major}.{minor}.{patch}", "v{version}"], ref_info("refs/tags/10.0.7", SHA))
    assert out.tags == ("10.0.7", "v10.0.7")


def test_prerelease_gets_its_version_but_no_floating_tags() -> None:
    out = render_tags(TEMPLATES, ref_info("refs/tags/v1.3.0-rc.1", SHA))
    assert out.tags == ("1.3.0-rc.1", "sha-0123456")
    reasons = dict(out.skipped)
    assert "pre-release" in reasons["{major}.{minor}"] and "pre-release" in reasons["{major}"]
    assert "pre-release" in reasons["latest"]


def test_build_metadata_is_not_part_of_the_tag() -> None:
    # '+' is invalid in a tag; the build metadata does not name a different release.
    assert render_tags(["{version}"], ref_info("refs/tags/v2.0.0+build.5", SHA)).tags == ("2.0.0",)


def test_branch_ref_renders_branch_and_sha_and_skips_versions() -> None:
    out = render_tags(TEMPLATES, ref_info("refs/heads/feature/Login Page", SHA))
    assert out.tags == ("latest", "sha-0123456", "feature-Login-Page")
    assert dict(out.skipped)["{version}"] == "the ref is not a semver git tag"


def test_non_semver_git_tag_is_skipped_with_reason() -> None:
    out = render_tags(["{version}", "{sha}"], ref_info("refs/tags/release-2024", SHA))
    assert out.tags == (SHA,)
    assert "not semver" in dict(out.skipped)["{version}"]


def test_bad_templates_are_skipped_not_crashes() -> None:
    out = render_tags(["{nope}", "{", "{branch}!", "ok"], RefInfo(sha=SHA, branch="main"))
    reasons = dict(out.skipped)
    assert "unknown placeholder {nope}" in reasons["{nope}"]
    assert reasons["{"].startswith("bad template")
    assert "invalid" in reasons["{branch}!"]
    assert out.tags == ("ok",)


def test_bad_sha_skips_sha_templates() -> None:
    out = render_tags(["sha-{sha}", "x"], RefInfo(sha="not-a-sha", branch="main"))
    assert out.tags == ("x",) and "not a hex sha" in dict(out.skipped)["sha-{sha}"]


def test_duplicates_render_once() -> None:
    assert render_tags(["latest", "latest"], RefInfo(sha=SHA)).tags == ("latest",)


@pytest.mark.parametrize(("branch", "tag"), [
    ("main", "main"), ("refs/heads/Fix/Bug#12", "Fix-Bug-12"), ("-x", "x"),
    ("...", "_"), ("a" * 300, "a" * 128),
    ("dependabot/npm_and_yarn/x-1.2", "dependabot-npm_and_yarn-x-1.2"),
])
def test_sanitise_branch(branch: str, tag: str) -> None:
    assert sanitise_branch(branch) == tag and tag_problem(tag) is None
