"""``load_spec``: a full spec into the dataclasses, conversions, defaults and file errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from immu_action.errors import BadInput, ExitCode, SpecError
from immu_action.spec import (
    BuildSpec,
    HealthcheckSpec,
    ImageSpec,
    PromoteSpec,
    SecretSpec,
    ServiceSpec,
    Spec,
    SuiteSpec,
    load_spec,
    validate_text,
)

GOOD = Path(__file__).parents[1] / "fixtures" / "specs" / "good"


def test_full_spec_round_trips_into_the_dataclasses() -> None:
    path = GOOD / "full.yml"
    here = GOOD.resolve()
    assert load_spec(path) == Spec(
        path=path,
        version=1,
        image=ImageSpec(
            repository="registry.example.com:5000/acme/shop",
            build=BuildSpec(
                context=here, dockerfile="Dockerfile", target="runtime",
                # 3.10 stays "3.10" (not 3.1); YAML 1.1 `yes` is a boolean, written "true".
                build_args={"PYTHON_VERSION": "3.10", "DEBUG": "true", "WORKERS": "4",
                            "EMPTY": ""},
                labels={"org.example.team": "payments"},
                secrets={"pip_token": SecretSpec(env="PIP_TOKEN"),
                         "netrc": SecretSpec(file=here / "db" / "netrc")},
                cache="registry.example.com:5000/acme/cache:shop",
            ),
        ),
        services={
            "db": ServiceSpec(
                name="db", image=None, env={"POSTGRES_PASSWORD": "test"},
                build=BuildSpec(context=here / "db", dockerfile="Dockerfile.db", target="base",
                                build_args={"PG": "16"}, labels={}),
                command=("postgres", "-c", "fsync=off"),
                healthcheck=HealthcheckSpec(test=("CMD", "pg_isready", "-U", "postgres"),
                                            interval_s=0.5, timeout_s=2.0, retries=30,
                                            start_period_s=60.0),
                startup_timeout_s=90.0,
            ),
            "cache": ServiceSpec(
                name="cache", image="localhost:5000/cache:7", build=None, env={},
                command=("/bin/sh", "-c", "cache-server --port 6379"),
                healthcheck=HealthcheckSpec(test=("CMD-SHELL", "cache-cli ping")),
            ),
        },
        tests={
            "unit": SuiteSpec(
                name="unit", command=("pytest", "-q", "--junitxml=/immu/results/unit.xml"),
                results="/immu/results", services=("db", "cache"),
                env={"DATABASE_URL": "postgresql://postgres:test@db:5432/postgres"},
                workdir="/app", user="1000", timeout_s=5400.0,
            ),
            "smoke": SuiteSpec(
                name="smoke", command=("/bin/sh", "-c", "./smoke.sh > /out/junit.xml"),
                results="/out", env={},
            ),
        },
        promote=PromoteSpec(
            branches=("main", "release"),
            tags=("{version}", "{major}.{minor}", "{major}", "latest", "sha-{short_sha}",
                  "{branch}"),
            mutable=("{major}.{minor}", "{major}", "latest", "{branch}"),
            environment="prod", staging_tag="staging-{sha}",
        ),
    )


def test_minimal_spec_takes_the_documented_defaults() -> None:
    spec = load_spec(GOOD / "minimal.yml")
    assert spec.image.build == BuildSpec(context=GOOD.resolve(), dockerfile="Dockerfile",
                                         target=None, build_args={}, labels={},
                                         cache=f"{spec.image.repository}:immu-buildcache")
    assert spec.services == {}
    assert spec.promote is None
    suite = spec.tests["unit"]
    assert (suite.results, suite.timeout_s, suite.services) == ("/immu/results", 600.0, ())
    assert suite.command == ("/bin/sh", "-c", "pytest")


def test_anchors_merge_keys_and_extension_keys() -> None:
    spec = load_spec(GOOD / "anchors.yml")
    unit, e2e = spec.tests["unit"], spec.tests["e2e"]
    assert (unit.services, unit.timeout_s, unit.env) == (("db",), 300.0, {"LOG_LEVEL": "debug"})
    assert (e2e.timeout_s, e2e.command) == (1200.0, ("pytest", "tests/e2e"))  # own key wins
    db = spec.services["db"]
    assert db.build is not None and db.build.context == (GOOD / "db").resolve()
    assert db.env == {"LOG_LEVEL": "debug"}
    assert db.healthcheck == HealthcheckSpec(test=("NONE",))
    assert db.startup_timeout_s == 120.0
    # `mutable` defaults to [latest] only because latest is one of the tags.
    assert spec.promote == PromoteSpec(tags=("{version}", "latest"))  # latest floats


def test_mutable_defaults_to_nothing_without_latest(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    text = ("version: 1\nimage: {repository: a/b}\ntests: {u: {command: x}}\n"
            "promote: {tags: ['{version}']}\n")
    spec, problems = validate_text(text, path=tmp_path / "immu.yml")
    assert problems == []
    assert spec is not None and spec.promote is not None
    assert spec.promote.mutable == ()


def test_path_as_given_is_kept_and_contexts_are_relative_to_the_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sub" / "app").mkdir(parents=True)
    (tmp_path / "sub" / "app" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "sub" / "immu.yml").write_text(
        "version: 1\nimage: {repository: a/b, context: app}\ntests: {u: {command: x}}\n")
    monkeypatch.chdir(tmp_path)
    spec = load_spec(Path("sub/immu.yml"))
    assert spec.path == Path("sub/immu.yml")
    assert spec.image.build.context == (tmp_path / "sub" / "app").resolve()


def test_missing_file_is_bad_input_naming_it(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"nope\.yml: no such file") as caught:
        load_spec(tmp_path / "nope.yml")
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    with pytest.raises(BadInput, match="is a directory"):
        load_spec(tmp_path)


def test_unreadable_file_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    # A path through a regular file fails with ENOTDIR for every user, root included.
    with pytest.raises(BadInput, match=r"file/immu\.yml: cannot read: Not a directory"):
        load_spec(tmp_path / "file" / "immu.yml")


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "immu.yml"
    path.write_bytes(b"version: 1\nimage:\n  repository: caf\xe9\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.problems == [
        f"{path}:3: (file): byte 0xe9 is not UTF-8 (save the file as UTF-8)"]


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    path = tmp_path / "immu.yml"
    path.write_bytes(b"\xef\xbb\xbfversion: 1\nimage: {repository: a/b}\n"
                     b"tests: {u: {command: x}}\n")
    assert load_spec(path).version == 1
