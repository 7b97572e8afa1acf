"""The registry's bounded retry policy: which answers are retried, how long to wait between
tries (exponential, honouring ``Retry-After``), and the cap on attempts and total wait."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Bounded exponential backoff: ``attempts`` tries, waits capped each and in total."""

    attempts: int = 5
    base_s: float = 0.5
    max_wait_s: float = 30.0
    max_total_s: float = 90.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before try ``attempt + 1`` (``Retry-After`` wins, within the cap)."""
        wanted = retry_after if retry_after is not None else self.base_s * (2 ** (attempt - 1))
        return max(0.0, min(wanted, self.max_wait_s))


class Backoff:
    """The tries and waits one retried operation has spent under a ``RetryPolicy``."""

    def __init__(self, policy: RetryPolicy, sleep: Callable[[float], None]) -> None:
        self.policy, self.sleep = policy, sleep
        self.attempt, self.waited = 0, 0.0

    def next_try(self) -> int:
        """Count one more try; returns its number (from 1)."""
        self.attempt += 1
        return self.attempt

    @property
    def last_try(self) -> bool:
        """True when the policy allows no further try."""
        return self.attempt >= self.policy.attempts

    def pause(self, retry_after: str | None) -> bool:
        """Sleep before the next try (``Retry-After`` honoured) and return True, or return
        False without sleeping when that would pass the policy's total wait."""
        pause = self.policy.delay(self.attempt, retry_after_seconds(retry_after))
        if self.waited + pause > self.policy.max_total_s:
            return False
        self.sleep(pause)
        self.waited += pause
        return True


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), None when absent/invalid."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
