"""Cancellation plumbing: helper threads never take a termination signal from the main
thread (whose blocking calls it must interrupt), and a held signal is delivered after."""

from __future__ import annotations

import signal
import threading

import pytest

from immu_action.adapters.pool import HelperPool
from immu_action.adapters.signals import cancellable, deferred, start_helper
from immu_action.errors import Cancelled

TERMINATION = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def _blocked_here() -> set[int]:
    return set(signal.pthread_sigmask(signal.SIG_BLOCK, []))


def test_helper_threads_block_termination_signals_from_their_start() -> None:
    seen: list[set[int]] = []
    thread = threading.Thread(target=lambda: seen.append(_blocked_here()))
    start_helper(thread)
    thread.join()
    with HelperPool(max_workers=2) as pool:
        in_pool = [pool.submit(_blocked_here).result() for _ in range(3)]
    assert seen[0] >= TERMINATION
    assert all(mask >= TERMINATION for mask in in_pool)
    assert not TERMINATION & _blocked_here()  # the main thread is left as it was


def test_a_plain_thread_would_take_them() -> None:
    seen: list[set[int]] = []
    thread = threading.Thread(target=lambda: seen.append(_blocked_here()))
    thread.start()
    thread.join()
    assert not TERMINATION & seen[0]  # why start_helper exists


def test_a_signal_held_by_deferred_is_raised_when_it_ends() -> None:
    reached_end_of_block = False
    with pytest.raises(Cancelled, match="SIGTERM"), cancellable(), deferred():
        # To the main thread: a process-directed signal may go to any thread that does not
        # block it (a test server's thread), which deferred() does not govern.
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)
        reached_end_of_block = True  # the resource is recorded before the signal acts
    assert reached_end_of_block
