"""Every tool a project script calls is one it checks for and installs (a fresh machine has
none of them): ``registry.sh`` once called ``curl`` that nothing installed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
# Tools a fresh Debian machine lacks; each script calling one must look for it first.
TOOLS = ("curl", "wget", "openssl", "htpasswd", "jq", "skopeo", "debootstrap",
         "docker-registry")


@pytest.mark.parametrize("script", sorted(SCRIPTS.glob("*.sh")), ids=lambda p: p.name)
def test_each_tool_a_script_calls_is_checked_and_installed(script: Path) -> None:
    text = "\n".join(line for line in script.read_text().splitlines()
                     if not line.lstrip().startswith("#"))
    for tool in TOOLS:
        if re.search(rf"(^|[\s(|;&$]){re.escape(tool)}(\s|$)", text, re.M):
            assert re.search(rf"command -v {re.escape(tool)}\b", text), (
                f"{script.name} calls {tool} but never checks for it (and installs it)")
