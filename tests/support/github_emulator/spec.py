"""GitHub's OpenAPI subset as JSON Schema validators, plus minimal valid response skeletons.

OpenAPI 3.0 schemas are JSON Schema with a few dialect differences; the one that matters here
is ``nullable: true``, rewritten to a ``"null"`` type so ``jsonschema`` (2020-12) understands it.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SUBSET = Path(__file__).resolve().parent.parent / "openapi" / "github-subset.json"
BASE = "urn:github-openapi"


def _convert(node: Any) -> Any:
    """OpenAPI 3.0 schema dialect -> JSON Schema 2020-12 (``nullable`` only)."""
    if isinstance(node, list):
        return [_convert(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        if "$ref" in out or "type" not in out:
            return {"anyOf": [out, {"type": "null"}]}
        kind = out["type"]
        out["type"] = [*kind, "null"] if isinstance(kind, list) else [kind, "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def _pointer(*parts: str) -> str:
    """A JSON pointer fragment from raw path parts."""
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass(frozen=True, kw_only=True)
class Operation:
    """One operation of the subset: its path template, regex and raw OpenAPI object."""

    method: str
    template: str
    regex: re.Pattern[str]
    raw: dict[str, Any]


class OpenAPI:
    """The committed subset: operation lookup and request/response validation."""

    def __init__(self, path: Path = SUBSET) -> None:
        self.doc: dict[str, Any] = _convert(json.loads(path.read_text(encoding="utf-8")))
        resource = Resource.from_contents(self.doc, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(BASE, resource)
        self.operations: list[Operation] = []
        for template, methods in self.doc["paths"].items():
            # Parameters are one segment, except a trailing branch name ("feature/x").
            pattern = re.sub(r"\{[^}]+\}", "([^/]+)", template)
            if template.endswith(("{branch}", "{basehead}")):
                pattern = pattern[: -len("([^/]+)")] + "(.+)"
            for method, raw in methods.items():
                self.operations.append(Operation(
                    method=method.upper(), template=template,
                    regex=re.compile(f"^{pattern}$"), raw=raw))

    def find(self, method: str, path: str) -> Operation | None:
        """The operation matching ``method path`` (path without query), if the subset has it."""
        for op in self.operations:
            if op.method == method and op.regex.match(path):
                return op
        return None

    def _validator(self, pointer: str) -> jsonschema.protocols.Validator:
        return _validator(self, pointer)

    def deref(self, node: dict[str, Any]) -> dict[str, Any]:
        """Follow a ``$ref`` to a component (parameters, responses)."""
        while "$ref" in node:
            _, _, kind, name = node["$ref"].split("/", 3)
            node = self.doc["components"][kind][name]
        return node

    def request_errors(self, op: Operation, query: dict[str, list[str]],
                       body: Any, is_json: bool) -> list[str]:
        """Why a request does not conform to ``op`` (empty when it does)."""
        errors: list[str] = []
        params = [self.deref(p) for p in op.raw.get("parameters", [])]
        known = {p["name"]: p for p in params if p["in"] == "query"}
        for name in query:
            if name not in known:
                errors.append(f"query parameter {name!r} is not defined")
        for name, param in known.items():
            if param.get("required") and name not in query:
                errors.append(f"query parameter {name!r} is required")
        content = op.raw.get("requestBody", {}).get("content", {})
        if "application/json" in content and is_json:
            ptr = _pointer("paths", op.template, op.method.lower(), "requestBody", "content",
                           "application/json", "schema")
            errors += _messages(self._validator(ptr), body)
        elif op.raw.get("requestBody", {}).get("required") and body is None:
            errors.append("request body is required")
        return errors

    def response_errors(self, op: Operation, status: int, body: Any) -> list[str]:
        """Why a response does not conform to ``op`` (empty when it does)."""
        responses = op.raw.get("responses", {})
        if str(status) not in responses:
            return [f"status {status} is not a documented response"]
        response = self.deref(responses[str(status)])
        if "application/json" not in response.get("content", {}):
            return [] if body is None else [f"status {status} documents no JSON body"]
        ref = responses[str(status)].get("$ref")
        if ref:
            ptr = ref[1:] + _pointer("content", "application/json", "schema")
        else:
            ptr = _pointer("paths", op.template, op.method.lower(), "responses", str(status),
                           "content", "application/json", "schema")
        return _messages(self._validator(ptr), body)

    def skeleton(self, component: str, **overrides: Any) -> dict[str, Any]:
        """A minimal valid instance of ``components/schemas/<component>`` with ``overrides``."""
        value = _fill(self, self.doc["components"]["schemas"][component])
        merged: dict[str, Any] = _merge(value, overrides)
        return merged


@cache
def _validator(spec: OpenAPI, pointer: str) -> jsonschema.protocols.Validator:
    schema = {"$ref": f"{BASE}#{pointer}"}
    cls = jsonschema.Draft202012Validator
    return cls(schema, registry=spec.registry, format_checker=cls.FORMAT_CHECKER)


def _messages(validator: jsonschema.protocols.Validator, instance: Any,
              most: int = 20) -> list[str]:
    """Readable errors: where, and the message (or the keyword it breaks, when huge)."""
    out = []
    for error in itertools.islice(validator.iter_errors(instance), most):
        where = "/".join(map(str, error.absolute_path)) or "<body>"
        text = error.message if len(error.message) <= 200 else (
            f"breaks {error.validator}: {error.validator_value!r}")
        out.append(f"{where}: {text}")
    return out


_STRINGS = {"date-time": "2026-11-26T00:00:00Z", "uri": "http://127.0.0.1/x",
            "email": "octocat@example.com", "uuid": "00000000-0000-0000-0000-000000000000"}


def _fill(spec: OpenAPI, schema: dict[str, Any]) -> Any:
    """Smallest value satisfying ``schema``: required properties, first non-null choices."""
    schema = spec.deref(schema)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged = _merge(merged, _fill(spec, part))
        return merged
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if spec.deref(o).get("type") != "null"]
            return _fill(spec, options[0])
    kind = schema.get("type", "object")
    if isinstance(kind, list):  # nullable: real GitHub objects fill these, so do we
        kind = next(k for k in kind if k != "null")
    if "enum" in schema:
        return next(v for v in schema["enum"] if v is not None)
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _fill(spec, props.get(name, {})) for name in schema.get("required", [])}
    return {"array": [], "string": _STRINGS.get(schema.get("format", ""), "x"),
            "integer": 1, "number": 1, "boolean": False}[kind]


def _merge(base: Any, extra: Any) -> Any:
    """``extra`` laid over ``base`` (dicts recursively), copying."""
    if isinstance(base, dict) and isinstance(extra, dict):
        out = copy.deepcopy(base)
        for key, value in extra.items():
            out[key] = _merge(out.get(key), value)
        return out
    return copy.deepcopy(extra)
