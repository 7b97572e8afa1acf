"""Helpers for GitHub reporting tests: contexts, clients and run results (no fixtures here:
those live in fixture.py, loaded as a pytest plugin)."""

from __future__ import annotations

from immu_action.adapters.github.client import GitHubClient, RetryPolicy
from immu_action.core.context import GitHubContext
from immu_action.core.results import (
    Failure,
    RunResult,
    SuiteResult,
    SuiteStatus,
    TestResults,
    Totals,
)
from tests.support.github_emulator.server import GitHubEmulator

SHA = "a" * 40
OLD = "0" * 40
DIGEST = "sha256:" + "d" * 64
# Fast but still bounded: no backoff between attempts, waits up to 5 s when told to.
FAST = RetryPolicy(attempts=3, backoff_factor=0.0, max_wait_s=5.0, secondary_wait_s=1.0,
                   timeout_s=10, seconds_between_writes=0.0)


def client(emu: GitHubEmulator, policy: RetryPolicy = FAST) -> GitHubClient:
    """A client of the emulator, as the action builds one from GITHUB_API_URL."""
    return GitHubClient(api_url=emu.url, token=emu.token, repository=emu.state.full_name,
                        policy=policy)


def context(emu: GitHubEmulator, *, event: str = "push", ref: str = "refs/heads/main",
            sha: str = SHA, pr: int | None = None, fork: bool = False) -> GitHubContext:
    """A context as ``parse_context`` would build it for ``event`` on ``ref``."""
    kind = "tag" if ref.startswith("refs/tags/") else "branch" if "heads" in ref else ""
    return GitHubContext(
        repository=emu.state.full_name, sha=sha, ref=ref, ref_name=ref.rsplit("/", 1)[-1]
        if kind != "branch" else ref.removeprefix("refs/heads/"), ref_type=kind,  # type: ignore[arg-type]
        event_name=event, run_id="42", run_attempt="1", server_url="https://github.example",
        api_url=emu.url, pr_number=pr, is_fork=fork, token=emu.token)


def failure(i: int, suite: str = "unit") -> Failure:
    """A failing test case with a location, number ``i``."""
    return Failure(suite=suite, classname="tests.test_shop", name=f"test_{i}",
                   kind="failure", message=f"assert {i} == {i + 1}", details="Traceback...",
                   file="tests/test_shop.py", line=10 + i)


def run_result(*, failures: int = 0, suites: tuple[str, ...] = ("unit", "api"),
               passed: int = 20, message_size: int = 0) -> RunResult:
    """A run of ``suites``; the first suite carries ``failures`` failures."""
    out = []
    for n, name in enumerate(suites):
        fails = tuple(failure(i, name) for i in range(failures)) if n == 0 else ()
        if message_size:
            fails = tuple(Failure(**{**f.as_dict(), "message": "x" * message_size,
                                     "details": "y" * message_size}) for f in fails)
        totals = Totals(tests=passed + len(fails), passed=passed, failed=len(fails),
                        duration_s=1.5)
        out.append(SuiteResult(
            name=name, status=SuiteStatus.FAILED if fails else SuiteStatus.PASSED,
            exit_code=1 if fails else 0, results=TestResults(totals=totals, failures=fails),
            duration_s=1.5))
    return RunResult(image_id="sha256:" + "e" * 64, repository="registry.test/acme/shop",
                     digest=DIGEST, tested_is_shipped=True, suites=tuple(out))
