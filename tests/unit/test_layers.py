"""Imports point down only (docs/ARCHITECTURE.md): every ``import immu_action...`` in the
package, lazy ones inside functions included, names a module of the same or a lower layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "immu_action"
# Lowest first: a module may import its own layer and the ones below, never above.
LAYERS = {"errors": 0, "__init__": 0, "core": 1, "spec": 2, "output": 2, "adapters": 3,
          "stages": 4, "run": 5, "commands": 6, "cli": 7, "__main__": 7}


def layer(module: str) -> str:
    """``immu_action.adapters.docker.engine`` -> ``adapters``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every immu_action import in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "immu_action":  # from immu_action import output, __version__
                found += [(node.lineno, f"immu_action.{a.name}" if _submodule(a.name)
                           else "immu_action") for a in node.names]
            elif node.module.startswith("immu_action."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names
                      if a.name.startswith("immu_action.")]
    return found


def _submodule(name: str) -> bool:
    return (PACKAGE / f"{name}.py").exists() or (PACKAGE / name / "__init__.py").exists()


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    names = {layer("immu_action." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts))
             for p in MODULES}
    assert names <= set(LAYERS), names - set(LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    source = "immu_action." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    mine = LAYERS[layer(source)]
    upward = [f"{path.relative_to(PACKAGE)}:{line} imports {target} ({layer(target)})"
              for line, target in imports(path) if LAYERS[layer(target)] > mine]
    assert upward == [], f"{layer(source)} may import only lower layers"


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from immu_action.stages.build import build\n")
    assert imports(bad) == [(2, "immu_action.stages.build")]
