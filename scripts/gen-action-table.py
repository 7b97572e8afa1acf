#!/usr/bin/env python3
"""Render the README's action tables (inputs, outputs) from action.yml.

    scripts/gen-action-table.py            print the tables
    scripts/gen-action-table.py --write    replace them in README.md between the markers
    scripts/gen-action-table.py --check    exit 1 if README.md is out of date

Each input row also names what the program reads (the action passes inputs only through
``env:``) and the ``immu run`` flag with the same meaning, so a reader sees the whole path
from `with:` to the CLI; tests/unit/test_action_contract.py keeps all of them in agreement.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- action-table:begin -->"
END = "<!-- action-table:end -->"

# input -> (what the program reads, the equivalent `immu run` flag or "")
INPUT_ROUTES: dict[str, tuple[str, str]] = {
    "spec": ("IMMU_SPEC", "-f FILE"),
    "working-directory": ("(the step's working directory)", ""),
    "github-token": ("GITHUB_TOKEN", ""),
    "registry-username": ("IMMU_REGISTRY_USERNAME", ""),
    "registry-password": ("IMMU_REGISTRY_PASSWORD", ""),
    "push": ("IMMU_PUSH", "--push / --no-push"),
    "promote": ("IMMU_PROMOTE", "--promote auto|true|false"),
    "suites": ("IMMU_SUITES", "--suite NAME..."),
    "fail-on": ("IMMU_FAIL_ON", "--fail-on failures|errors|nothing"),
    "parallel": ("IMMU_PARALLEL", "--parallel N|auto"),
    "check-name": ("IMMU_CHECK_NAME", "--check-name NAME"),
    "mode": ("IMMU_MODE", "--mode run|build|gather"),
    "image": ("IMMU_IMAGE", "--image REPOSITORY@DIGEST"),
    "shard": ("IMMU_SHARD", "--shard I"),
    "shards": ("IMMU_SHARDS", "--shards N"),
}


def _cell(text: Any) -> str:
    """One table cell: a single line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{_cell(text)}`" if text else ""


USAGE = """\
```yaml
on: pull_request
permissions: {}
jobs:
  immu:
    runs-on: ubuntu-latest
    permissions: {contents: read, statuses: write, checks: write, pull-requests: write}
    steps:
      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2
        with: {persist-credentials: false}
      - id: immu
        uses: org/immu-action@v1
        with:
          registry-password: ${{ secrets.REGISTRY_PASSWORD }}
```

Workflows to copy, each with minimal permissions and `ADAPT` comments on the lines to change:
[pull request](examples/workflows/pull-request.yml) (build, test, report; no push),
[push to main](examples/workflows/main.yml) (push, test, report, promote `latest` and
`sha-...`), [tag push](examples/workflows/release.yml) (semver tags, release section and
assets), [rollback](examples/workflows/rollback.yml) (`workflow_dispatch`). The action needs
only the runner's `python3` (>= 3.10) and Docker: it installs itself into a venv under
`RUNNER_TEMP`, reused by later uses in the same job.
"""


def render(action: dict[str, Any]) -> str:
    """The markdown between the README markers (without the markers)."""
    lines = [
        USAGE,
        "Inputs (`with:`); each reaches the program only through the step's `env:`.",
        "",
        "| input | default | description | read as | `immu run` flag |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, spec in action["inputs"].items():
        env, flag = INPUT_ROUTES.get(name, ("?", ""))
        env_cell = _code(env) if env.isupper() or env.startswith("IMMU_") else _cell(env)
        default = "" if spec.get("default") in (None, "") else _code(str(spec["default"]))
        lines.append(f"| `{name}` | {default} | {_cell(spec['description'])} "
                     f"| {env_cell} | {_code(flag)} |")
    lines += ["", "Outputs (`steps.<id>.outputs.<name>`), written by the program itself:", "",
              "| output | description |", "| --- | --- |"]
    for name, spec in action["outputs"].items():
        lines.append(f"| `{name}` | {_cell(spec['description'])} |")
    return "\n".join(lines)


def splice(readme: str, table: str) -> str:
    """README text with ``table`` between the markers (which must each appear once)."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        raise SystemExit(f"README.md must contain {BEGIN} and {END} exactly once each")
    head, rest = readme.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    """Print, write or check the README's action tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="update README.md")
    mode.add_argument("--check", action="store_true", help="exit 1 if README.md is stale")
    args = parser.parse_args(argv)
    table = render(yaml.safe_load((ROOT / "action.yml").read_text()))
    readme_path = ROOT / "README.md"
    if not (args.write or args.check):
        print(table)
        return 0
    readme = readme_path.read_text()
    wanted = splice(readme, table)
    if args.check:
        if wanted != readme:
            print("README.md's action tables are stale: run scripts/gen-action-table.py --write",
                  file=sys.stderr)
            return 1
        return 0
    readme_path.write_text(wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
