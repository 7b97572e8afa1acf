"""YAML node access for the spec loader: compose, problems with lines, merge keys, duplicates.

We walk PyYAML's *node* tree (``yaml.compose``) instead of loaded values because only nodes
keep line numbers, and because ``safe_load`` silently keeps the last of two duplicate keys.
Anchors and aliases work (an alias is the same node); ``<<`` merge keys work as in YAML 1.1
(the mapping's own keys win, then earlier merged mappings); top-level ``x-*`` keys are ignored
so that anchors have a home.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

TAG = "tag:yaml.org,2002:"
_KINDS = {
    "str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean",
    "null": "null", "timestamp": "a date", "binary": "binary data", "merge": "`<<`",
}


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One thing wrong with the spec, at a 1-based line and a dotted key path."""

    line: int
    path: str
    message: str
    hint: str

    def render(self, file: str) -> str:
        """``file:LINE: key.path: what is wrong (what would be valid)``."""
        return f"{file}:{self.line}: {self.path}: {self.message} ({self.hint})"

    def as_json(self) -> dict[str, object]:
        """The ``--json`` form: line, path and message (hint included)."""
        return {"line": self.line, "path": self.path, "message": f"{self.message} ({self.hint})"}


@dataclass(kw_only=True)
class Walk:
    """What a walk collects: problems, and the line of every key path it visited."""

    problems: list[Problem] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)

    def add(self, line: int, path: str, message: str, hint: str) -> None:
        """Record a problem; whitespace is collapsed so that each problem is one line."""
        message, hint = " ".join(message.split()), " ".join(hint.split())
        self.problems.append(Problem(line=line, path=path, message=message, hint=hint))


def line_of(node: yaml.Node) -> int:
    """1-based line where ``node`` starts."""
    return int(node.start_mark.line) + 1


def describe(node: yaml.Node) -> str:
    """What the user wrote, for "expected X, got Y" messages."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return _KINDS.get(str(node.tag).removeprefix(TAG), "a scalar")


def scalar_kind(node: yaml.Node) -> str | None:
    """``str``, ``int``, ``float``, ``bool``, ``null``... for a scalar node, else ``None``."""
    if not isinstance(node, yaml.ScalarNode):
        return None
    return str(node.tag).removeprefix(TAG)


# libyaml's parser with the same SafeLoader tag resolution composes 4x faster; on any error we
# parse again with the pure-Python SafeLoader, whose messages are the ones we report and test.
_FAST = getattr(yaml, "CSafeLoader", None)


def compose(text: str, walk: Walk) -> yaml.Node | None:
    """The document's root node, or ``None`` with a problem recorded for bad YAML."""
    if _FAST is not None:
        try:
            return yaml.compose(text, Loader=_FAST)
        except (yaml.YAMLError, RecursionError):
            pass
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:  # the composer recurses once per nesting level
        walk.add(1, "(yaml)", "invalid YAML: nested too deeply to read",
                 "immu.yml nests a few levels; remove the deep nesting")
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = int(mark.line) + 1 if mark is not None else 1
        what = " ".join(p for p in (e.context, e.problem) if p)
        hint = "fix the YAML syntax"
        if "\t" in what or "'\\t'" in what:
            hint = "YAML indents with spaces, never tabs"
        walk.add(line, "(yaml)", f"invalid YAML: {what}", hint)
    except yaml.reader.ReaderError as e:  # a control character: a position, not a mark
        code = ord(e.character) if isinstance(e.character, str) else int(e.character)
        walk.add(text.count("\n", 0, e.position) + 1, "(yaml)",
                 f"invalid YAML: character #x{code:04x} is not allowed",
                 "the file must be printable UTF-8 text")
    except yaml.YAMLError as e:  # nothing else is raised by compose; kept so none escapes
        walk.add(1, "(yaml)", f"invalid YAML: {e}", "fix the YAML syntax")
    return None


def pairs(
    node: yaml.MappingNode, path: str, walk: Walk
) -> list[tuple[str, yaml.Node, yaml.Node]]:
    """``(key, key node, value node)`` with merges applied; duplicate keys are problems."""
    return _pairs(node, path, walk, seen=set())


def _pairs(
    node: yaml.MappingNode, path: str, walk: Walk, seen: set[int]
) -> list[tuple[str, yaml.Node, yaml.Node]]:
    seen = seen | {id(node)}
    own: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    merged: list[tuple[str, yaml.Node, yaml.Node]] = []
    for key_node, value_node in node.value:
        if scalar_kind(key_node) == "merge":
            merged.extend(_merge(value_node, path, walk, seen))
            continue
        if not isinstance(key_node, yaml.ScalarNode):
            walk.add(line_of(key_node), path or "(document)",
                     f"a key is {describe(key_node)}", "keys are plain strings")
            continue
        key = str(key_node.value)
        if key in own:
            walk.add(line_of(key_node), _join(path, key),
                     f"duplicate key, first defined on line {line_of(own[key][0])}",
                     "each key may appear once")
            continue
        own[key] = (key_node, value_node)
    result = [(key, k, v) for key, (k, v) in own.items()]
    for key, k, v in merged:  # own keys win; among merged mappings the first wins
        if key not in own:
            own[key] = (k, v)
            result.append((key, k, v))
    return result


def _merge(
    value: yaml.Node, path: str, walk: Walk, seen: set[int]
) -> list[tuple[str, yaml.Node, yaml.Node]]:
    """The pairs a ``<<`` value contributes: one mapping or a list of mappings."""
    sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
    out: list[tuple[str, yaml.Node, yaml.Node]] = []
    for source in sources:
        if not isinstance(source, yaml.MappingNode):
            walk.add(line_of(source), _join(path, "<<"), f"merges {describe(source)}",
                     "`<<` takes an alias of a mapping or a list of them")
        elif id(source) in seen:
            walk.add(line_of(source), _join(path, "<<"), "merges a mapping into itself",
                     "merge a different mapping")
        else:
            out.extend(_pairs(source, path, walk, seen))
    return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
