"""Cancellation: SIGTERM/SIGINT/SIGHUP become ``Cancelled`` so ``finally`` blocks clean up.

A composite action has no post step, so the process itself must clean up when the
runner cancels a job (SIGINT, then SIGTERM after 7.5 s, then SIGKILL 2.5 s later).

Every helper thread blocks these signals (``start_helper``, ``pool.HelperPool``): the kernel
hands a process signal to any thread that does not block it, and one delivered to a helper
leaves the main thread asleep in its socket read (``docker wait`` of a 30-minute suite)
instead of interrupting it, so the handler would only run when that read ends.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from immu_action.errors import Cancelled

_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _raise_cancelled(signum: int, _frame: FrameType | None) -> None:
    raise Cancelled(f"received {signal.Signals(signum).name}: run cancelled, resources removed")


@contextmanager
def _handlers(handler: Any) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = {s: signal.signal(s, handler) for s in _SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def cancellable() -> Iterator[None]:
    """Within this block a termination signal raises ``Cancelled`` in the main thread."""
    with _handlers(_raise_cancelled):
        yield


@contextmanager
def shielded() -> Iterator[None]:
    """Within this block termination signals are ignored, so cleanup runs to its end."""
    with _handlers(signal.SIG_IGN):
        yield


@contextmanager
def deferred() -> Iterator[None]:
    """Hold termination signals until the block ends (then they are delivered).

    Wraps "create a resource, then remember it": a signal in between would leak it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)



def start_helper(thread: threading.Thread) -> None:
    """Start ``thread`` with termination signals blocked from its first instruction (a
    thread inherits its creator's signal mask), so they always reach the main thread."""
    with deferred():
        thread.start()
