"""Sharding: when immu runs a suite as one of IMMU_SHARDS matrix jobs, keep this job's part.

pytest-split does the same (``pip install pytest-split``, then ``pytest --splits
"$IMMU_SHARDS" --group "$IMMU_SHARD" --durations-path "$IMMU_DURATIONS"``); these few lines
keep the example free of a plugin. Tests are dealt longest first to the least loaded shard,
by the durations immu hands over from the last promoted digest's stored results (the file
named by IMMU_DURATIONS), or evenly when there are none yet. Every shard computes the same
deal, so each test runs exactly once.
"""

from __future__ import annotations

import json
import os

import pytest


def _durations() -> dict[str, float]:
    path = os.environ.get("IMMU_DURATIONS")
    if not path or not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return {str(k): float(v) for k, v in json.load(f).items()}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    shards = int(os.environ.get("IMMU_SHARDS") or 1)
    if shards < 2:
        return
    shard = int(os.environ["IMMU_SHARD"])
    known = _durations()
    average = sum(known.values()) / len(known) if known else 1.0
    cost = {item.nodeid: known.get(item.nodeid, average) for item in items}
    load = [0.0] * shards
    keep: set[str] = set()
    for nodeid in sorted(cost, key=lambda n: (-cost[n], n)):
        target = min(range(shards), key=lambda i: (load[i], i))
        load[target] += cost[nodeid]
        if target == shard - 1:
            keep.add(nodeid)
    config.hook.pytest_deselected(items=[i for i in items if i.nodeid not in keep])
    items[:] = [i for i in items if i.nodeid in keep]
