"""Value grammars behind the spec: durations, repositories, names, tag templates, defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from immu_action.core import naming, tags
from immu_action.core.durations import DURATION_PATTERN, format_duration, parse_duration
from immu_action.spec import validate_text
from immu_action.spec.kinds import Kind
from immu_action.spec.nodes import Walk
from immu_action.spec.rules import SPEC
from immu_action.spec.shapes import Fields, Names, TextOr


@pytest.mark.parametrize("text,seconds", [
    ("90", 90.0), ("90s", 90.0), ("10m", 600.0), ("1h30m", 5400.0), ("500ms", 0.5),
    ("1.5s", 1.5), (".5s", 0.5), ("1m500ms", 60.5), ("0", 0.0), ("2h", 7200.0),
])
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert re.match(DURATION_PATTERN, text)


@pytest.mark.parametrize("text", ["", "-5s", "30m1h", "1:30", "5 s", "1d", "s", "ms", "1.s",
                                  "1h1h", "10 minutes"])
def test_bad_durations_refused_by_parser_and_pattern(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)
    assert not re.match(DURATION_PATTERN, text)


@pytest.mark.parametrize("seconds,text", [(5400.0, "1h30m"), (90.0, "1m30s"), (0.5, "500ms"),
                                          (1.5, "1.5s")])
def test_durations_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("value", ["acme/shop", "registry.example.com/acme/shop",
                                   "localhost/app", "localhost:5000/app", "reg:5000/a/b/c",
                                   "a__b/c-d.e--f", "My.Registry.io/app", "x"])
def test_valid_repositories(value: str) -> None:
    assert naming.check_repository(value) is None
    assert re.match(naming.REPOSITORY_PATTERN, value)


@pytest.mark.parametrize("value,problem", [
    ("Acme/Shop", "must be lowercase"), ("acme/shop:1", "has a tag"),
    ("acme/shop@sha256:" + "a" * 64, "has a digest"), ("acme//x", "not a valid repository"),
    ("x_", "not a valid repository"), ("a" * 256, "256 characters long"),
    ("reg.io:5000/A", "must be lowercase"), ("acme/.x", "not a valid repository"),
])
def test_invalid_repositories(value: str, problem: str) -> None:
    found = naming.check_repository(value)
    assert found is not None and problem in found[0]
    assert not re.match(naming.REPOSITORY_PATTERN, value) or "characters long" in problem


@pytest.mark.parametrize("value,valid", [
    ("db", True), ("db-1", True), ("1db", True), ("a" * 63, True), ("a" * 64, False),
    ("-db", False), ("db-", False), ("DB", False), ("my_db", False), ("a.b", False),
])
def test_dns_labels(value: str, valid: bool) -> None:
    assert (naming.check_dns_label(value) is None) is valid
    assert bool(re.match(naming.DNS_LABEL_PATTERN, value)) is valid


@pytest.mark.parametrize("value,valid", [
    ("{version}", True), ("v{major}.{minor}", True), ("sha-{short_sha}", True), ("latest", True),
    ("{branch}-{sha}", True), ("{vers}", False), (".{version}", False), ("-x", False),
    ("a/b", False), ("{major:02}", False), ("{version", False), ("{}", False),
    ("x" * 129, False),
])
def test_tag_templates(value: str, valid: bool) -> None:
    assert (naming.check_tag_template(value) is None) is valid
    if len(value) <= 128:
        assert bool(re.match(naming.TEMPLATE_PATTERN, value)) is valid


def test_placeholders_agree_with_the_tag_renderer() -> None:
    assert set(naming.PLACEHOLDERS) == set(tags.PLACEHOLDERS)


def _keys(fields: Fields, path: str) -> list[tuple[str, object, Kind]]:
    """Every documented default: (key path, YAML default, kind)."""
    found = []
    for key, spec in fields.keys.items():
        kind = spec.kind.entry if isinstance(spec.kind, Names) else spec.kind
        kind = kind.fields if isinstance(kind, TextOr) else kind
        if spec.default is not None:
            found.append((f"{path}{key}", spec.default, spec.kind))
        if isinstance(kind, Fields):
            found.extend(_keys(kind, f"{path}{key}."))
    return found


def test_documented_defaults_are_the_dataclass_defaults(tmp_path: Path) -> None:
    """The schema's `default`s, walked as YAML, give what a spec without them gets."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    text = ("version: 1\nimage: {repository: a/b}\ntests: {u: {command: x}}\n"
            "services: {s: {image: pg, healthcheck: {test: x}}}\npromote: {tags: [latest]}\n")
    spec, problems = validate_text(text, path=tmp_path / "immu.yml")
    assert problems == [] and spec is not None and spec.promote is not None
    service, health = spec.services["s"], spec.services["s"].healthcheck
    actual = {
        "image.context": spec.image.build.context, "image.dockerfile": spec.image.build.dockerfile,
        "services.startup-timeout": service.startup_timeout_s,
        "services.healthcheck.interval": health and health.interval_s,
        "services.healthcheck.timeout": health and health.timeout_s,
        "services.healthcheck.retries": health and health.retries,
        "services.healthcheck.start-period": health and health.start_period_s,
        "tests.results": spec.tests["u"].results, "tests.timeout": spec.tests["u"].timeout_s,
        "promote.environment": spec.promote.environment,
        "promote.staging-tag": spec.promote.staging_tag,
        "promote.floating": spec.promote.floating, "tests.junit": spec.tests["u"].junit,
        "tests.shard": spec.tests["u"].shard,
    }
    defaults = _keys(SPEC, "")
    assert sorted(path for path, _, _ in defaults) == sorted(
        [*actual, "services.build.context", "services.build.dockerfile"])
    for path, default, kind in defaults:
        walk = Walk()
        node = yaml.compose(yaml.safe_dump(default))
        assert node is not None
        value = kind.walk(node, path, walk)
        assert walk.problems == []
        if path == "image.context":
            value = (tmp_path / value).resolve()
        if path in actual:
            assert value == actual[path], path
