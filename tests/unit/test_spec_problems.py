"""Each problem ``immu.yml`` can have, with its exact line, key path and hint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from immu_action.spec import Spec, validate_text

HEAD = "version: 1\nimage: {repository: acme/app}\n"
SUITE = "tests: {unit: {command: pytest}}\n"
LINE = re.compile(r"^immu\.yml:[1-9]\d*: \S+: [^\n]+ \([^\n]+\)$")


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path


def check(text: str, where: Path) -> tuple[Spec | None, list[str]]:
    spec, problems = validate_text(text, path=where / "immu.yml")
    lines = [p.render("immu.yml").replace(str(where.resolve()), "{dir}") for p in problems]
    return spec, lines


CASES = {
    "empty file": ("", ["immu.yml:1: (document): the file is empty "
                        "(a mapping with `version: 1`, `image` and `tests`)"]),
    "only comments": ("# todo\n", ["immu.yml:1: (document): the file is empty "
                                   "(a mapping with `version: 1`, `image` and `tests`)"]),
    "scalar document": ("hello\n", [
        "immu.yml:1: (document): expected a mapping, got a string "
        "(a mapping with keys version, image, services, tests, promote)"]),
    "tab indentation": ("version: 1\nimage:\n\trepository: x\n", [
        "immu.yml:3: (yaml): invalid YAML: while scanning for the next token found character "
        "'\\t' that cannot start any token (YAML indents with spaces, never tabs)"]),
    "bad indentation": ("version: 1\nimage:\n  repository: a\n   b: c\n", [
        "immu.yml:4: (yaml): invalid YAML: mapping values are not allowed here "
        "(fix the YAML syntax)"]),
    "two documents": ("version: 1\n---\nversion: 1\n", [
        "immu.yml:2: (yaml): invalid YAML: expected a single document in the stream but found "
        "another document (fix the YAML syntax)"]),
    "control character": ("version: 1\nimage: \x07\n", [
        "immu.yml:2: (yaml): invalid YAML: character #x0007 is not allowed "
        "(the file must be printable UTF-8 text)"]),
    "nesting deeper than the stack": ("version: " + "[" * 50_000 + "]" * 50_000 + "\n", [
        "immu.yml:1: (yaml): invalid YAML: nested too deeply to read "
        "(immu.yml nests a few levels; remove the deep nesting)"]),
    "undefined alias": (HEAD + "tests: *nope\n", [
        "immu.yml:3: (yaml): invalid YAML: found undefined alias 'nope' (fix the YAML syntax)"]),
    "list as key": (HEAD + SUITE + "? [a]\n: b\n", [
        "immu.yml:4: (document): a key is a list (keys are plain strings)"]),
    "x- keys only at top level": (HEAD + "tests: {unit: {command: x, x-note: y}}\n", [
        "immu.yml:3: tests.unit.x-note: unknown key "
        "(valid keys: command, results, services, env, workdir, user, timeout, junit, shard)"]),
    "merge of a scalar": (HEAD + "tests: {unit: {<<: 1, command: x}}\n", [
        "immu.yml:3: tests.unit.<<: merges an integer "
        "(`<<` takes an alias of a mapping or a list of them)"]),
    "merge into itself": ("version: 1\nimage: &i\n  repository: a/b\n  <<: *i\n" + SUITE, [
        "immu.yml:2: image.<<: merges a mapping into itself (merge a different mapping)"]),
    "duplicate key names both lines": (HEAD + "tests:\n  unit: {command: x}\n"
                                       "  unit: {command: y}\n", [
        "immu.yml:5: tests.unit: duplicate key, first defined on line 4 "
        "(each key may appear once)"]),
    "version as a string": ("version: '1'\nimage: {repository: a/b}\n" + SUITE, [
        "immu.yml:1: version: expected the integer 1, got a string "
        "(write `version: 1` without quotes)"]),
    "retries zero": (HEAD + SUITE + "services: {db: {image: pg, healthcheck: "
                     "{test: 'true', retries: 0}}}\n", [
        "immu.yml:4: services.db.healthcheck.retries: 0 is too small (at least 1)"]),
    "null env value": (HEAD + "tests: {unit: {command: x, env: {A: ~}}}\n", [
        "immu.yml:3: tests.unit.env.A: has no value "
        '(a string, number or boolean; write "" for an empty string)']),
    "env name with =": (HEAD + "tests: {unit: {command: x, env: {A=B: c}}}\n", [
        "immu.yml:3: tests.unit.env.A=B: name is empty or contains `=` "
        "(a name like DATABASE_URL)"]),
    "command with a mapping word": (HEAD + "tests: {unit: {command: [echo, {a: b}]}}\n", [
        "immu.yml:3: tests.unit.command[1]: expected a string, got a mapping "
        '(a string; quote values that start with "{")']),
    "blank command string": (HEAD + "tests: {unit: {command: '  '}}\n", [
        "immu.yml:3: tests.unit.command: expected a non-empty string or list of strings, "
        "got a string (a non-empty string or list of strings)"]),
    "zero startup-timeout": (HEAD + SUITE + "services: {db: {image: pg, startup-timeout: 0}}\n",
                             ["immu.yml:4: services.db.startup-timeout: duration `0` must be "
                              "positive (at least 1ms)"]),
    "suite named like a service": (HEAD + "services: {db: {image: pg}}\n"
                                   "tests: {db: {command: x}}\n", [
        "immu.yml:4: tests.db: suite `db` has the name of a service "
        "(suite and service names share the test network's aliases)"]),
    "service listed twice": (HEAD + "services: {db: {image: pg}}\n"
                             "tests: {unit: {command: x, services: [db, db]}}\n", [
        "immu.yml:4: tests.unit.services[1]: `db` is listed twice (list each entry once)"]),
    "dockerfile missing in context": ("version: 1\nimage: {repository: a/b, dockerfile: "
                                      "Containerfile}\n" + SUITE, [
        "immu.yml:2: image.dockerfile: `Containerfile` not found in {dir} "
        "(create it, or set `dockerfile` to its path within the context)"]),
    "default Dockerfile missing in service context": (HEAD + SUITE + "services:\n  db:\n"
                                                      "    build: .github\n", [
        "immu.yml:6: services.db.build.context: directory `.github` not found "
        "(a directory relative to {dir})"]),
    "service image with a bad tag": (HEAD + SUITE + "services: {db: {image: 'pg:a b'}}\n", [
        "immu.yml:4: services.db.image: `pg:a b` is not a valid image reference "
        "(repository[:tag][@sha256:digest], like postgres:16 or localhost:5000/db:1)"]),
    "bad repository component": ("version: 1\nimage: {repository: acme/-app}\n" + SUITE, [
        "immu.yml:2: image.repository: `acme/-app` is not a valid repository (like "
        "registry.example.com/team/app or localhost:5000/app; path components are [a-z0-9] "
        "joined by `.`, `_`, `__` or `-`)"]),
}


@pytest.mark.parametrize("text,expected", CASES.values(), ids=list(CASES))
def test_problem_is_reported_exactly(text: str, expected: list[str], spec_dir: Path) -> None:
    spec, lines = check(text, spec_dir)
    assert spec is None
    assert lines == expected
    assert all(LINE.match(line) for line in lines)


def test_all_problems_at_once_sorted_by_line(spec_dir: Path) -> None:
    text = (
        "version: 3\n"                                 # 1
        "image:\n"                                     # 2
        "  repository: Acme/App\n"                     # 3
        "  labels: {a: null}\n"                        # 4
        "services:\n"                                  # 5
        "  db: {image: pg, build: .}\n"                # 6
        "tests:\n"                                     # 7
        "  unit:\n"                                    # 8
        "    command: x\n"                             # 9
        "    services: [cache]\n"                      # 10
        "    timeout: forever\n"                       # 11
        "    workdir: app\n"                           # 12
        "promote: {tags: ['{vers}'], mutable: [x]}\n"  # 13
        "bogus: 1\n"                                   # 14
    )
    spec, lines = check(text, spec_dir)
    assert spec is None
    assert [int(line.split(":")[1]) for line in lines] == [1, 3, 4, 6, 10, 11, 12, 13, 13, 14]
    assert all(LINE.match(line) for line in lines)
    assert "immu.yml:14: bogus: unknown key (valid keys: version, image, services, tests, " \
           "promote)" in lines


@pytest.mark.parametrize("written,seconds", [
    ("90", 90.0), ("90s", 90.0), ("10m", 600.0), ("1h30m", 5400.0), ("500ms", 0.5),
    ("1.5s", 1.5), ("2.5", 2.5), ("'45'", 45.0),
])
def test_accepted_durations(written: str, seconds: float, spec_dir: Path) -> None:
    spec, lines = check(HEAD + f"tests: {{unit: {{command: x, timeout: {written}}}}}\n", spec_dir)
    assert lines == []
    assert spec is not None and spec.tests["unit"].timeout_s == seconds


def test_scalars_convert_to_strings(spec_dir: Path) -> None:
    text = (HEAD + "tests:\n  unit:\n    command: [sleep, 10, 0.5]\n    user: '1000:1000'\n"
            "    env: {FLAG: false, ON: on, NUM: 0x1F, V: 3.10, E: ''}\n")
    spec, lines = check(text, spec_dir)
    assert lines == []
    assert spec is not None
    unit = spec.tests["unit"]
    assert unit.command == ("sleep", "10", "0.5")
    assert unit.user == "1000:1000"
    # YAML 1.1 booleans (on/off/yes/no) become true/false; numbers keep their literal text.
    assert unit.env == {"FLAG": "false", "ON": "true", "NUM": "0x1F", "V": "3.10", "E": ""}


def test_healthcheck_string_is_cmd_shell(spec_dir: Path) -> None:
    text = HEAD + SUITE + "services: {db: {image: pg, healthcheck: {test: pg_isready -q}}}\n"
    spec, lines = check(text, spec_dir)
    assert lines == []
    assert spec is not None and spec.services["db"].healthcheck is not None
    assert spec.services["db"].healthcheck.test == ("CMD-SHELL", "pg_isready -q")


def test_alias_problem_is_reported_where_it_is_written(spec_dir: Path) -> None:
    text = (HEAD + "tests:\n  a: {command: x, env: &e {A: null}}\n  b: {command: x, env: *e}\n")
    _, lines = check(text, spec_dir)
    assert lines == [
        'immu.yml:4: tests.a.env.A: has no value (a string, number or boolean; write "" for '
        'an empty string)',
        'immu.yml:4: tests.b.env.A: has no value (a string, number or boolean; write "" for '
        'an empty string)',
    ]


def test_merge_chain_deeper_than_the_stack(spec_dir: Path) -> None:
    chain = "x-0: &a0 {command: x}\n" + "".join(
        f"x-{i}: &a{i} {{<<: *a{i - 1}}}\n" for i in range(1, 5000))
    _, lines = check(chain + HEAD + "tests: {unit: *a4999}\n", spec_dir)
    assert lines == ["immu.yml:1: <<: merge keys are chained too deeply "
                     "(merge a few mappings at most)"]
