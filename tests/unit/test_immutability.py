"""Which promoted tags move, and a release history walked through the rules (pure)."""

from __future__ import annotations

import pytest

from immu_action.core.immutability import (
    held_back,
    is_exact,
    mutable_tags,
    released_versions,
)
from immu_action.core.tags import ref_info, render_tags

EXAMPLE = ("{version}", "{major}.{minor}", "{major}", "latest")  # examples/python-service
SHA = "a" * 40


@pytest.mark.parametrize(("template", "exact"), [
    ("{version}", True), ("v{version}", True), ("{major}.{minor}.{patch}", True),
    ("sha-{sha}", True), ("{short_sha}", True), ("{major}.{minor}", False), ("{major}", False),
    ("latest", False), ("stable", False), ("{branch}", False), ("edge-{branch}", False),
])
def test_exact_templates_pin_one_build_and_the_others_float(template: str, exact: bool) -> None:
    assert is_exact(template) is exact


def test_mutable_tags_are_the_floating_ones_plus_what_the_spec_lists() -> None:
    pairs = render_tags(list(EXAMPLE), ref_info("refs/tags/v1.2.3", SHA)).pairs
    assert mutable_tags(pairs, ()) == {"1.2", "1", "latest"}
    # promote.mutable names templates (the spec's words) or rendered tags; both count
    assert mutable_tags(pairs, ("{version}",)) == {"1.2.3", "1.2", "1", "latest"}
    assert mutable_tags(pairs, ("1.2.3",)) == {"1.2.3", "1.2", "1", "latest"}


def test_released_versions_come_from_exact_version_tags_only() -> None:
    names = ["1.2.0", "1.2", "1", "latest", "v9.9.9", "2.0.0-rc.1", "immu-audit-1.2.0.x",
             "immu-staging-" + SHA + "-7.1", "sha-" + SHA, "1.10.0", "01.2.3"]
    assert released_versions(names, EXAMPLE) == ["1.2.0", "1.10.0"]
    assert released_versions(names, ("v{version}", "latest")) == ["9.9.9"]
    assert released_versions(["r1.3.4", "1.3"], ("r{major}.{minor}.{patch}",)) == ["1.3.4"]
    assert released_versions(names, ("{major}", "latest")) == []  # no exact template


def moved(version: str, released: list[str], rule: str = "highest") -> list[str]:
    """The tags a release of ``version`` writes, given the versions already released."""
    pairs = render_tags(list(EXAMPLE), ref_info(f"refs/tags/v{version}", SHA)).pairs
    held = {h.tag for h in held_back(pairs, version=version, sha=SHA, released=released,
                                     rule=rule)}  # type: ignore[arg-type]
    return [tag for tag, _ in pairs if tag not in held]


def test_a_release_history_moves_floating_tags_only_forward() -> None:
    history: list[str] = []
    expected = {
        "1.2.0": ["1.2.0", "1.2", "1", "latest"],
        "1.2.1": ["1.2.1", "1.2", "1", "latest"],
        "1.3.0": ["1.3.0", "1.3", "1", "latest"],
        "2.0.0": ["2.0.0", "2.0", "2", "latest"],
        # a patch of an older line: 1.2 moves; 1 stays on 1.3.0 and latest on 2.0.0
        "1.2.2": ["1.2.2", "1.2"],
    }
    for version, tags in expected.items():
        assert moved(version, history) == tags, version
        history.append(version)
    # a re-run of a release writes the same tags (its exact tag is already there)
    assert moved("2.0.0", history) == ["2.0.0", "2.0", "2", "latest"]
    assert moved("1.3.0", history) == ["1.3.0", "1.3", "1"]  # still the highest 1.x


def test_newest_lets_floating_tags_follow_every_release() -> None:
    assert moved("1.2.2", ["1.3.0", "2.0.0"], rule="newest") == ["1.2.2", "1.2", "1", "latest"]


def test_the_reason_names_the_release_that_keeps_the_tag() -> None:
    pairs = render_tags(list(EXAMPLE), ref_info("refs/tags/v1.2.2", SHA)).pairs
    held = held_back(pairs, version="1.2.2", sha=SHA, released=["1.3.0", "2.0.0", "1.2.1"])
    assert [(h.tag, h.stays_on) for h in held] == [("1", "1.3.0"), ("latest", "2.0.0")]
    assert "`latest` stays on 2.0.0: 1.2.2 is older" in held[1].reason


def test_pre_releases_never_move_floating_tags_nor_count_as_history() -> None:
    rendered = render_tags(list(EXAMPLE), ref_info("refs/tags/v3.0.0-rc.1", SHA))
    assert rendered.tags == ("3.0.0-rc.1",)
    assert moved("2.1.0", ["2.0.0"]) == ["2.1.0", "2.1", "2", "latest"]
