"""Structured kinds of ``immu.yml``: fixed-key mappings, named entries, string-or-mapping.

``Fields`` reports unknown keys with the closest valid one, missing required keys at the
parent's line, and "exactly one of" groups (a service has ``image`` or ``build``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from immu_action.core.naming import DNS_LABEL_PATTERN, check_dns_label
from immu_action.spec.kinds import INVALID, JSON, Kind, Text, _wrong, join
from immu_action.spec.nodes import Walk, line_of, pairs


@dataclass(frozen=True, kw_only=True)
class Key:
    """One key of a mapping: its kind, documentation, whether required, its default as YAML."""

    kind: Kind
    doc: str
    required: bool = False
    default: Any = None


@dataclass(frozen=True, kw_only=True)
class Fields(Kind):
    """A mapping with known keys; ``extensions`` ignores ``x-*`` keys (a home for anchors)."""

    doc: str
    keys: Mapping[str, Key]
    exactly_one: tuple[str, ...] = ()
    extensions: bool = False

    def walk(self, node: yaml.Node, path: str, walk: Walk) -> Any:
        if not isinstance(node, yaml.MappingNode):
            return _wrong(node, path or "(document)", walk, "a mapping",
                          "a mapping with keys " + ", ".join(self.keys))
        parent_line = walk.lines.get(path, line_of(node))
        out: dict[str, Any] = {}
        for key, key_node, value in pairs(node, path, walk):
            where = join(path, key)
            if self.extensions and key.startswith("x-"):
                continue
            if key not in self.keys:
                walk.add(line_of(key_node), where, "unknown key", self._suggest(key))
                continue
            walk.lines[where] = line_of(key_node)
            out[key] = self.keys[key].kind.walk(value, where, walk)
        for key, spec in self.keys.items():
            if spec.required and key not in out:
                walk.add(parent_line, join(path, key), "required key is missing",
                         f"add `{key}:`, {_first_sentence(spec.doc)}")
        if self.exactly_one and sum(k in out for k in self.exactly_one) != 1:
            both = all(k in out for k in self.exactly_one)
            names = [f"`{k}`" for k in self.exactly_one]
            has = f"both {' and '.join(names)}" if both else f"neither {' nor '.join(names)}"
            walk.add(parent_line, path, f"has {has}", f"give exactly one of {' or '.join(names)}")
        return out

    def _suggest(self, key: str) -> str:
        close = difflib.get_close_matches(key, list(self.keys), n=1, cutoff=0.6)
        if close:
            return f"did you mean `{close[0]}`?"
        return "valid keys: " + ", ".join(self.keys)

    def schema(self) -> JSON:
        properties: JSON = {}
        for key, spec in self.keys.items():
            properties[key] = {"description": spec.doc, **spec.kind.schema()}
            if spec.default is not None:
                properties[key]["default"] = spec.default
        out: JSON = {"type": "object", "description": self.doc, "properties": properties,
                     "additionalProperties": False}
        required = [key for key, spec in self.keys.items() if spec.required]
        if required:
            out["required"] = required
        if self.extensions:
            out["patternProperties"] = {"^x-": {}}
        if self.exactly_one:
            out["oneOf"] = [{"required": [key]} for key in self.exactly_one]
        return out


@dataclass(frozen=True, kw_only=True)
class Names(Kind):
    """``{name: entry}`` where each name is a DNS label (services, suites), or follows
    ``check`` and ``pattern`` (build secret ids)."""

    what: str
    entry: Kind
    min_items: int = 0
    check: Any = None  # Callable[[str], Problem | None]; None: a DNS label
    pattern: str = DNS_LABEL_PATTERN

    def walk(self, node: yaml.Node, path: str, walk: Walk) -> Any:
        if not isinstance(node, yaml.MappingNode):
            return _wrong(node, path, walk, f"a mapping of {self.what} names to {self.what}s")
        out: dict[str, Any] = {}
        for name, key_node, value in pairs(node, path, walk):
            where = join(path, name)
            problem = (self.check or check_dns_label)(name)
            if problem:
                walk.add(line_of(key_node), where, *problem)
            walk.lines[where] = line_of(key_node)
            out[name] = self.entry.walk(value, where, walk)
        if len(out) < self.min_items:
            walk.add(walk.lines.get(path, line_of(node)), path, f"defines no {self.what}",
                     f"at least one {self.what}, like `unit: {{command: [pytest]}}`")
        return out

    def schema(self) -> JSON:
        return {"type": "object", "minProperties": self.min_items,
                "propertyNames": {"pattern": self.pattern},
                "additionalProperties": self.entry.schema()}


@dataclass(frozen=True, kw_only=True)
class TextOr(Kind):
    """A string as shorthand for ``{key: string}``, or the full ``fields`` mapping."""

    key: str
    fields: Fields
    text: Text = field(default_factory=Text)

    def walk(self, node: yaml.Node, path: str, walk: Walk) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self.fields.walk(node, path, walk)
        value = self.text.walk(node, path, walk)
        return INVALID if value is INVALID else {self.key: value}

    def schema(self) -> JSON:
        return {"anyOf": [self.text.schema(), self.fields.schema()]}


def _first_sentence(doc: str) -> str:
    """``Dockerfile path. Relative...`` -> ``dockerfile path``, for short hints."""
    first = re.split(r"\. |: |; | \(", doc)[0].rstrip(".")
    return first[:1].lower() + first[1:]
