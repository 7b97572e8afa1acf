"""Bounded retries of the PyGithub adapter, driven by the emulator's fault injection."""

from __future__ import annotations

import time

import pytest

from immu_action.adapters.github.client import GitHubClient, GitHubPermissionError, RetryPolicy
from immu_action.errors import ExitCode, GitHubError
from tests.support.github_emulator import GitHubEmulator
from tests.support.github_emulator.helpers import (
    FAST,
    SHA,
    client,
)

STATUSES = "/statuses/"

pytest_plugins = ["tests.support.github_emulator.fixture"]


def _status(emu: GitHubEmulator, policy: RetryPolicy = FAST) -> None:
    client(emu, policy).create_status(SHA, state="success", context="immu", description="ok",
                                      target_url="https://github.example/run")


def test_502_then_success(emulator: GitHubEmulator) -> None:
    emulator.inject("POST", STATUSES, "502", times=2)
    _status(emulator)
    assert [c.status for c in emulator.calls] == [502, 502, 201]
    assert len(emulator.state.statuses) == 1


def test_502_until_attempts_run_out_is_a_clear_github_error(emulator: GitHubEmulator) -> None:
    emulator.inject("POST", STATUSES, "502", times=100)
    with pytest.raises(GitHubError) as caught:
        _status(emulator)
    assert caught.value.exit_code == ExitCode.EXTERNAL_FAILURE
    assert str(caught.value) == ("GitHub: set commit status 'immu' on aaaaaaaaaaaa: HTTP 502 "
                                 "Server Error (after retries)")
    assert len(emulator.calls) == FAST.attempts + 1


@pytest.mark.parametrize("kind", ["secondary", "secondary-body", "429", "primary"])
def test_rate_limits_wait_as_told_then_succeed(emulator: GitHubEmulator, kind: str) -> None:
    emulator.inject("POST", STATUSES, kind, times=1, wait_s=1)  # type: ignore[arg-type]
    started = time.monotonic()
    _status(emulator)
    waited = time.monotonic() - started
    assert [c.status for c in emulator.calls][-1] == 201 and len(emulator.calls) == 2
    assert waited >= 0.9, f"{kind}: retried after {waited:.2f}s without waiting"


def test_wait_longer_than_the_bound_fails_at_once(emulator: GitHubEmulator) -> None:
    emulator.inject("POST", STATUSES, "secondary", times=1, wait_s=3600)
    started = time.monotonic()
    with pytest.raises(GitHubError, match="rate limited beyond the wait we accept"):
        _status(emulator)
    assert time.monotonic() - started < 2 and len(emulator.calls) == 1


def test_plain_403_is_final_and_a_permission_error(emulator: GitHubEmulator) -> None:
    emulator.inject("POST", STATUSES, "forbidden", times=5)
    with pytest.raises(GitHubPermissionError, match="Resource not accessible by integration"):
        _status(emulator)
    assert len(emulator.calls) == 1


def test_bad_credentials(emulator: GitHubEmulator) -> None:
    gh = GitHubClient(api_url=emulator.url, token="ghs_wrong", repository="acme/shop",
                      policy=FAST)
    with pytest.raises(GitHubPermissionError, match="HTTP 401 Bad credentials"):
        gh.create_status(SHA, state="success", context="immu", description="", target_url="")
    assert len(emulator.calls) == 1


def test_unreachable_api_is_a_github_error() -> None:
    emu = GitHubEmulator().start()
    emu.stop()  # nothing listens on that port any more
    with pytest.raises(GitHubError, match="ConnectionError"):
        _status(emu, RetryPolicy(attempts=1, backoff_factor=0, timeout_s=2,
                                 seconds_between_writes=0))
