"""Golden fixtures: every bad spec's exact problem lines, and the JSON Schema agreeing with them.

Each ``tests/fixtures/specs/bad/*.yml`` starts with ``# schema: rejects``, ``# schema: accepts
(why)`` or ``# schema: unparsable``: what the shipped JSON Schema must say about it. The
validator must reject every bad fixture with exactly the lines of its ``.expected`` file.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from immu_action.commands.schema import schema_text
from immu_action.errors import SpecError
from immu_action.spec import load_spec, validate_file
from immu_action.spec import nodes as spec_yaml
from immu_action.spec.rules import json_schema

SPECS = Path(__file__).parents[1] / "fixtures" / "specs"
GOOD = sorted((SPECS / "good").glob("*.yml"))
BAD = sorted((SPECS / "bad").glob("*.yml"))
REGENERATE = ("python -c 'import json; from immu_action.spec.rules import json_schema; "
              "print(json.dumps(json_schema(), indent=2))' > immu_action/spec/immu.schema.json")


def _schema_verdict(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# schema: "), f"{path.name} lacks its `# schema:` marker"
    return first.removeprefix("# schema: ").split()[0]


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(schema_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_fixture_corpus_is_not_trivial() -> None:
    assert len(GOOD) >= 3
    assert len(BAD) >= 20
    verdicts = {_schema_verdict(p) for p in BAD}
    assert verdicts == {"rejects", "accepts", "unparsable"}


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good_fixture_is_valid_for_validator_and_schema(path: Path) -> None:
    spec, problems = validate_file(path)
    assert problems == []
    assert spec is not None and spec.tests
    errors = list(_validator().iter_errors(yaml.safe_load(path.read_text())))
    assert [e.message for e in errors] == []


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad_fixture_problems_match_golden(path: Path) -> None:
    golden = path.with_suffix(".expected").read_text()
    # Golden files name the fixture as a user in its directory would, and {dir} for that place.
    here = str(path.parent.resolve())
    expected = golden.replace(f"{path.name}:", f"{path}:").replace("{dir}", here)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert caught.value.problems == expected.splitlines()


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_schema_agrees_with_validator_on_bad_fixture(path: Path) -> None:
    verdict = _schema_verdict(path)
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        assert verdict == "unparsable"
        return
    assert verdict != "unparsable", f"{path.name} loads; mark it rejects or accepts"
    valid = _validator().is_valid(document)
    assert valid == (verdict == "accepts"), f"schema {'accepts' if valid else 'rejects'} it"


def test_shipped_schema_is_generated_from_the_rules() -> None:
    shipped = json.loads(schema_text())
    assert shipped == json_schema(), f"regenerate it: {REGENERATE}"


def test_schema_identifies_itself_and_documents_every_key() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith("immu.schema.json")
    undocumented: list[str] = []

    def visit(node: object, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.get("properties", {}).items():
                if not value.get("description"):
                    undocumented.append(f"{where}.{key}")
            for key, value in node.items():
                visit(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                visit(value, f"{where}[{index}]")

    visit(schema, "")
    assert undocumented == []
    assert set(schema["properties"]) == {"version", "image", "services", "tests", "promote"}


def test_libyaml_and_pure_python_parsers_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The libyaml fast path changes nothing: same specs, same problems, same lines."""
    assert spec_yaml._FAST is not None, "PyYAML here lacks libyaml: the fast path is untested"
    fast = [validate_file(path) for path in GOOD + BAD]
    monkeypatch.setattr(spec_yaml, "_FAST", None)
    assert [validate_file(path) for path in GOOD + BAD] == fast
