"""A thread pool whose workers never take a termination signal (see ``adapters.signals``).
Apart from ``signals``: concurrent.futures (and logging) are not imported before a build
starts; only the stages that run suites or copy tags use a pool."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from immu_action.adapters.signals import deferred

T = TypeVar("T")


class HelperPool(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose worker threads never receive termination signals
    (workers are spawned by ``submit``, which therefore runs with them blocked)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        with deferred():
            return super().submit(fn, *args, **kwargs)
