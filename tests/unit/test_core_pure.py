"""`immu_action.core` stays pure: no Docker, GitHub, HTTP, subprocess or environment access."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import immu_action.core

CORE = Path(immu_action.core.__file__).parent
FORBIDDEN = ("docker", "github", "requests", "subprocess", "urllib3", "socket")


def core_modules() -> list[str]:
    return sorted(f"immu_action.core.{p.stem}" for p in CORE.glob("*.py") if p.stem != "__init__")


def test_core_imports_no_io_library() -> None:
    modules = core_modules()
    assert "immu_action.core.results" in modules
    probe = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    loaded = json.loads(done.stdout)
    bad = [m for m in loaded
           if m.split(".")[0] in FORBIDDEN or m.startswith("immu_action.adapters")]
    assert bad == []


def test_core_reads_no_environment() -> None:
    offenders = []
    for path in CORE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
