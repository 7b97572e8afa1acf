#!/usr/bin/env python3
"""Regenerate tests/support/openapi/github-subset.json from GitHub's official OpenAPI description.

Runs ``npm pack @octokit/openapi`` (the package GitHub publishes its REST description in),
takes ``generated/api.github.com.json`` and keeps only the operations the GitHub adapter calls
plus every component they reference (transitively). Prose (descriptions, examples) is dropped
so the committed file stays small and diffs stay readable; schemas are kept verbatim.

Usage: scripts/update-github-openapi.py [--version X.Y.Z] [--from-tarball PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "support" / "openapi" / "github-subset.json"
MEMBER = "package/generated/api.github.com.json"

# (method, path) of every operation immu_action/adapters/github*.py uses. Keep in sync with
# the emulator's routes (tests/support/github_emulator/routes.py checks each one is here).
OPERATIONS: tuple[tuple[str, str], ...] = (
    ("post", "/repos/{owner}/{repo}/statuses/{sha}"),
    ("get", "/repos/{owner}/{repo}/commits/{ref}/check-runs"),
    ("post", "/repos/{owner}/{repo}/check-runs"),
    ("patch", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("patch", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("get", "/repos/{owner}/{repo}/releases/tags/{tag}"),
    ("post", "/repos/{owner}/{repo}/releases"),
    ("patch", "/repos/{owner}/{repo}/releases/{release_id}"),
    ("post", "/repos/{owner}/{repo}/releases/{release_id}/assets"),
    ("delete", "/repos/{owner}/{repo}/releases/assets/{asset_id}"),
    ("post", "/repos/{owner}/{repo}/deployments"),
    ("post", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses"),
    ("get", "/repos/{owner}/{repo}/branches/{branch}"),
    ("get", "/repos/{owner}/{repo}/rules/branches/{branch}"),
    ("get", "/repos/{owner}/{repo}/compare/{basehead}"),
)

# Prose and tooling metadata: irrelevant to validation, and most of the file's size.
DROP = {"description", "summary", "examples", "example", "externalDocs", "tags",
        "x-github", "x-githubEnterpriseOnly", "x-multi-segment"}


def _strip(node: Any) -> Any:
    """Copy ``node`` without prose keys (``example`` inside ``properties`` is a field: kept)."""
    if isinstance(node, list):
        return [_strip(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _strip(schema) for name, schema in value.items()}
        elif key not in DROP:
            out[key] = _strip(value)
    return out


def _refs(node: Any, found: set[str]) -> None:
    """Collect every ``$ref`` string below ``node``."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref)
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def trim(full: dict[str, Any]) -> dict[str, Any]:
    """The subset document: chosen operations and the transitive closure of their refs."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in OPERATIONS:
        try:
            op = full["paths"][path][method]
        except KeyError:
            sys.exit(f"update-github-openapi: {method.upper()} {path} is not in the description")
        paths.setdefault(path, {})[method] = _strip(op)
    components: dict[str, dict[str, Any]] = {}
    pending: set[str] = set()
    _refs(paths, pending)
    done: set[str] = set()
    while pending:
        ref = pending.pop()
        done.add(ref)
        _, _, kind, name = ref.split("/", 3)  # "#/components/<kind>/<name>"
        node = _strip(full["components"][kind][name])
        components.setdefault(kind, {})[name] = node
        found: set[str] = set()
        _refs(node, found)
        pending |= found - done
    for kind in components:
        components[kind] = dict(sorted(components[kind].items()))
    return {
        "openapi": full["openapi"],
        "info": {"title": full["info"]["title"], "version": full["info"]["version"]},
        "paths": dict(sorted(paths.items())),
        "components": dict(sorted(components.items())),
    }


def _fetch(version: str | None, workdir: Path) -> Path:
    """``npm pack`` the description package into ``workdir``; returns the tarball path."""
    spec = "@octokit/openapi" + (f"@{version}" if version else "")
    done = subprocess.run(
        ["npm", "pack", spec, "--pack-destination", str(workdir), "--json"],
        check=True, capture_output=True, text=True, timeout=600,
    )
    return workdir / str(json.loads(done.stdout)[0]["filename"])


def main() -> int:
    """Fetch (or read) the package, trim, write the subset, print a one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", help="@octokit/openapi version (default: latest)")
    parser.add_argument("--from-tarball", type=Path, help="use an already packed .tgz")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tarball = args.from_tarball or _fetch(args.version, Path(tmp))
        with tarfile.open(tarball) as tar:
            member = tar.extractfile(MEMBER)
            if member is None:
                sys.exit(f"update-github-openapi: {MEMBER} missing from {tarball}")
            full = json.load(member)
    subset = trim(full)
    subset["info"]["x-source"] = f"@octokit/openapi ({tarball.name}) {MEMBER}"
    OUT.write_text(json.dumps(subset, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    count = sum(len(v) for v in subset["components"].values())
    print(f"wrote {OUT.relative_to(ROOT)}: {len(OPERATIONS)} operations, {count} components")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
