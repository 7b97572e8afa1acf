"""The value kinds ``immu.yml`` is made of; each both checks YAML nodes and emits JSON Schema.

One declarative description (``spec_rules.SPEC``) built from these kinds drives the loader's
checks *and* the shipped JSON Schema, so the editor's completion and ``immu validate`` cannot
drift apart. A kind's ``walk`` records problems and returns the converted value (containers
hold ``INVALID`` where a part was wrong); the document is valid when no problem was recorded, so
one pass reports everything and cross-checks still see the valid parts. Strings are converted
from the scalar's literal text so that ``3.10`` stays ``3.10``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from immu_action.core.durations import DURATION_HINT, DURATION_PATTERN, parse_duration
from immu_action.spec.nodes import Walk, describe, line_of, pairs, scalar_kind

INVALID: Any = type("Invalid", (), {"__repr__": lambda self: "INVALID"})()
Check = Callable[[str], "tuple[str, str] | None"]
JSON = dict[str, Any]


def construct(node: yaml.Node) -> Any:
    """The Python value of a scalar node (YAML 1.1 rules, as ``yaml.safe_load``)."""
    return yaml.constructor.SafeConstructor().construct_object(node)


def join(path: str, key: str) -> str:
    """``a.b`` key paths; the root is the empty path."""
    return f"{path}.{key}" if path else key


class Kind:
    """A kind of value: ``walk`` checks and converts a node, ``schema`` describes it."""

    def walk(self, node: yaml.Node, path: str, walk: Walk) -> Any:
        """The converted value of ``node``, or ``INVALID`` with problems recorded."""
        raise NotImplementedError

    def schema(self) -> JSON:
        """This kind as a JSON Schema fragment."""
        raise NotImplementedError


def _wrong(node: yaml.Node, path: str, walk: Walk, expected: str, hint: str = "") -> Any:
    """Record "expected X, got Y" and return ``INVALID``."""
    hint = hint or expected
    if isinstance(node, yaml.MappingNode) and node.flow_style:
        hint += '; quote values that start with "{"'
    walk.add(line_of(node), path, f"expected {expected}, got {describe(node)}", hint)
    return INVALID


@dataclass(frozen=True, kw_only=True)
class Text(Kind):
    """A non-empty string; ``numbers`` also takes ``1000`` or ``3.10`` by their literal text."""

    numbers: bool = False
    check: Check | None = None
    pattern: str | None = None

    def walk(self, node: yaml.Node, path: str, walk: Walk) -> Any:
        kinds = ("str", "int", "float") if self.numbers else ("str",)
        if scalar_kind(node) not in kinds:
            return _wrong(node, path, walk, "a string")
        text = str(node.value)
        if not text:
            walk.add(line_of(node), path, "is empty", "a non-empty string")
            return INVALID
        problem = self.check(text) if self.check else None
        if problem:
            walk.add(line_of(node), path, *problem)
            return INVALID
        return text

    def schema(self) -> JSON:
        out: JSON = {"type": ["string", "number"] if self.numbers else "string", "minLength": 1}
        if self.numbers:
            out.pop("minLength")
        if self.pattern:
            out["pattern"] = self.pattern
        return out


@dataclass(frozen=True, kw_only=True)
class Const(Kind):
    """Exactly one integer value (``version: 1``)."""

    value: int

    def walk(self, node: yaml.Node, path: str, walk: Walk) -> Any:
        if scalar_kind(node) != "int":
            return _wrong(node, path, walk, f"the integer {self.value}",
                          f"write `{path}: {self.value}` without quotes")
        if construct(node) != self.value:
            walk.add(line_of(node), path, f"unsupported version {node.value}",
                     f"this immu supports {path}: {self.value}")
            return INVALID
        return self.value

    def schema(self) -> JSON:
        return {"const": self.value}


@dataclass(frozen=True, kw_only=True)
class Choice(Kind):
    """One of a few scalar values (strings or booleans), compared after YAML conversion."""

    values: tuple[str | bool, ...]

    def walk(self, node: yaml.Node, path: str, walk: Walk) -> Any:
        value = construct(node) if isinstance(node, yaml.ScalarNode) else INVALID
        # type first: YAML's 1 must not pass as True
        if not any(type(value) is type(v) and value == v for v in self.values):
            shown = ", ".join(str(v).lower() if isinstance(v, bool) else v for v in self.values)
            return _wrong(node, path, walk, f"one of {shown}")
        return value

    def schema(self) -> JSON:
        return {"enum": list(self.values)}


@dataclass(frozen=True, kw_only=True)
class Integer(Kind):
    """An integer of at least ``minimum``."""

    minimum: int = 0

    def walk(self, node: yaml.Node, path: str, walk: Walk) -> Any:
        if scalar_kind(node) != "int":
            return _wrong(node, path, walk, "an integer", f"an integer >= {self.minimum}")
        value = int(construct(node))
        if value < self.minimum:
            walk.add(line_of(node), path, f"{value} is too small", f"at least {self.minimum}")
            return INVALID
        return value

    def schema(self) -> JSON:
        return {"type": "integer", "minimum": self.minimum}


@dataclass(frozen=True, kw_only=True)
class Duration(Kind):
    """Seconds as a float from ``90``, ``90s``, ``1h30m``...; ``positive`` refuses zero."""

    positive: bool = True

    def walk(self, node: yaml.Node, path: str, walk: Walk) -> Any:
        if scalar_kind(node) not in ("str", "int", "float"):
            return _wrong(node, path, walk, "a duration", DURATION_HINT)
        text = str(node.value)
        if text.startswith("-"):
            walk.add(line_of(node), path, f"duration `{text}` is negative", DURATION_HINT)
            return INVALID
        try:
            seconds = parse_duration(text)
        except ValueError as e:
            walk.add(line_of(node), path, str(e), DURATION_HINT)
            return INVALID
        if self.positive and seconds < 0.001:
            walk.add(line_of(node), path, f"duration `{text}` must be positive", "at least 1ms")
            return INVALID
        return seconds

    def schema(self) -> JSON:
        number: JSON = {"type": "number"}
        number["exclusiveMinimum" if self.positive else "minimum"] = 0
        return {"anyOf": [number, {"type": "string", "pattern": DURATION_PATTERN}]}


@dataclass(frozen=True, kw_only=True)
class StrMap(Kind):
    """``{NAME: scalar}``; values become strings (``true``/``false`` for booleans), no nulls."""

    def walk(self, node: yaml.Node, path: str, walk: Walk) -> Any:
        if not isinstance(node, yaml.MappingNode):
            return _wrong(node, path, walk, "a mapping of names to strings")
        out: dict[str, str] = {}
        for key, key_node, value in pairs(node, path, walk):
            where = join(path, key)
            kind = scalar_kind(value)
            if not key or "=" in key:
                walk.add(line_of(key_node), where, "name is empty or contains `=`",
                         "a name like DATABASE_URL")
            elif kind == "bool":
                out[key] = "true" if construct(value) else "false"
            elif kind in ("str", "int", "float"):
                out[key] = str(value.value)
            elif kind == "null":
                walk.add(line_of(value), where, "has no value",
                         'a string, number or boolean; write "" for an empty string')
            else:
                _wrong(value, where, walk, "a string, number or boolean")
        return out

    def schema(self) -> JSON:
        return {"type": "object", "propertyNames": {"minLength": 1, "pattern": "^[^=]+$"},
                "additionalProperties": {"type": ["string", "number", "boolean"]}}


@dataclass(frozen=True, kw_only=True)
class TextList(Kind):
    """A list of strings, each checked by ``item``; no repeats."""

    item: Text = field(default_factory=Text)
    min_items: int = 0

    def walk(self, node: yaml.Node, path: str, walk: Walk) -> Any:
        if not isinstance(node, yaml.SequenceNode):
            return _wrong(node, path, walk, "a list of strings")
        if len(node.value) < self.min_items:
            walk.add(line_of(node), path, "is empty", f"at least {self.min_items} entry")
            return INVALID
        out: list[str] = []
        for index, item in enumerate(node.value):
            value = self.item.walk(item, f"{path}[{index}]", walk)
            walk.lines[f"{path}[{index}]"] = line_of(item)
            if value is not INVALID and value in out:
                walk.add(line_of(item), f"{path}[{index}]", f"`{value}` is listed twice",
                         "list each entry once")
            out.append(value)
        return tuple(out)

    def schema(self) -> JSON:
        return {"type": "array", "items": self.item.schema(), "minItems": self.min_items,
                "uniqueItems": True}


_SHELL = ("/bin/sh", "-c")


@dataclass(frozen=True, kw_only=True)
class Command(Kind):
    """A string (run by ``/bin/sh -c``) or a non-empty list of strings (exec form)."""

    def walk(self, node: yaml.Node, path: str, walk: Walk) -> Any:
        if scalar_kind(node) == "str" and node.value.strip():
            return (*_SHELL, str(node.value))
        if (scalar_kind(node) == "str" or isinstance(node, yaml.SequenceNode)) and not node.value:
            walk.add(line_of(node), path, "is empty", "a command string or list of strings")
            return INVALID
        if isinstance(node, yaml.SequenceNode):
            items = [_word(item, f"{path}[{i}]", walk) for i, item in enumerate(node.value)]
            return tuple(items)
        return _wrong(node, path, walk, "a non-empty string or list of strings")

    def schema(self) -> JSON:
        return {"anyOf": [{"type": "string", "pattern": r"\S"},
                          {"type": "array", "minItems": 1,
                           "items": {"type": ["string", "number"]}}]}


def _word(node: yaml.Node, path: str, walk: Walk) -> Any:
    """One argument of an exec-form command; numbers are taken by their literal text."""
    if scalar_kind(node) in ("str", "int", "float"):
        return str(node.value)
    return _wrong(node, path, walk, "a string")


_TEST_HINT = '[CMD, prog, args...], [CMD-SHELL, "shell command"], [NONE] or a shell string'


@dataclass(frozen=True, kw_only=True)
class HealthTest(Kind):
    """A healthcheck test as in Compose; a plain string means ``CMD-SHELL``."""

    def walk(self, node: yaml.Node, path: str, walk: Walk) -> Any:
        if scalar_kind(node) == "str" and node.value.strip():
            return ("CMD-SHELL", str(node.value))
        if (scalar_kind(node) == "str" or isinstance(node, yaml.SequenceNode)) and not node.value:
            walk.add(line_of(node), path, "is empty", _TEST_HINT)
            return INVALID
        if not isinstance(node, yaml.SequenceNode):
            return _wrong(node, path, walk, _TEST_HINT)
        words = [_word(item, f"{path}[{i}]", walk) for i, item in enumerate(node.value)]
        if INVALID in words:
            return INVALID
        head, rest = words[0], words[1:]
        if (head == "CMD" and rest) or (head == "CMD-SHELL" and len(rest) == 1) or (
            head == "NONE" and not rest
        ):
            return tuple(words)
        walk.add(line_of(node), path, f"`[{', '.join(words)}]` is not a healthcheck test",
                 _TEST_HINT)
        return INVALID

    def schema(self) -> JSON:
        return {"anyOf": [
            {"type": "string", "pattern": r"\S"},
            {"type": "array", "prefixItems": [{"const": "CMD"}], "minItems": 2,
             "items": {"type": ["string", "number"]}},
            {"type": "array", "prefixItems": [{"const": "CMD-SHELL"}, {"type": "string"}],
             "minItems": 2, "maxItems": 2},
            {"type": "array", "prefixItems": [{"const": "NONE"}], "maxItems": 1, "minItems": 1},
        ]}
