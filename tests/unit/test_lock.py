"""requirements/action.lock, what the action installs with --require-hashes, agrees with
pyproject.toml: every dependency pinned at a version its range allows, every pin hashed, and
nothing of this machine's pip configuration in it. ``scripts/lock.sh`` rewrites it."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "action.lock"


def pins(text: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, its hashes), from a pip-compile --generate-hashes file."""
    out: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=\S)", text):
        m = re.match(r"^([A-Za-z0-9._-]+)==(\S+)", block)
        if m:
            out[canonicalize_name(m[1])] = (m[2], re.findall(r"--hash=sha256:([0-9a-f]{64})",
                                                             block))
    return out


def test_every_dependency_is_pinned_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    locked = pins(LOCK.read_text())
    for text in project["dependencies"]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is in pyproject.toml but not locked: scripts/lock.sh"
        version = locked[name][0]
        assert req.specifier.contains(version, prereleases=True), (
            f"{req.name}=={version} does not satisfy {req.specifier}: run scripts/lock.sh")


def test_every_pin_is_hashed_and_nothing_local_leaks_in() -> None:
    text = LOCK.read_text()
    locked = pins(text)
    assert len(locked) >= 5
    assert all(hashes for _, hashes in locked.values()), [n for n, (_, h) in locked.items()
                                                          if not h]
    assert not re.search(r"^\s*--(find-links|index-url|extra-index-url)|file://|/opt/", text,
                         re.M), "the lock must name what PyPI serves, not this machine's config"


def test_the_pins_parser_reads_a_lock() -> None:
    sample = ("a-b==1.0 \\\n    --hash=sha256:" + "1" * 64 + "\n    # via x\n"
              "c==2 \\\n    --hash=sha256:" + "2" * 64 + " \\\n    --hash=sha256:" + "3" * 64)
    assert pins(sample) == {"a-b": ("1.0", ["1" * 64]), "c": ("2", ["2" * 64, "3" * 64])}
