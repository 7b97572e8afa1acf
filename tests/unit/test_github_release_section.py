"""replace_section: only the text between our markers changes; a human's notes stay."""

from __future__ import annotations

from immu_action.adapters.github.release import BEGIN, END, replace_section


def test_empty_body_gets_just_the_section() -> None:
    assert replace_section("", "## Tested\nx") == f"{BEGIN}\n## Tested\nx\n{END}\n"


def test_section_is_appended_after_human_text_without_markers() -> None:
    body = replace_section("Release notes\n- fix", "S")
    assert body == f"Release notes\n- fix\n\n{BEGIN}\nS\n{END}\n"


def test_only_the_marked_section_is_replaced_and_it_is_stable() -> None:
    body = f"Intro\n{BEGIN}\nold\n{END}\nOutro"
    once = replace_section(body, "new")
    assert once == f"Intro\n{BEGIN}\nnew\n{END}\nOutro"
    assert replace_section(once, "new") == once


def test_a_lone_begin_marker_is_not_trusted() -> None:
    body = f"Intro {BEGIN} but no end"
    assert replace_section(body, "S").startswith(body)
