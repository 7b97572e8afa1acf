"""The one exception hierarchy: every failure a user can meet, with its exit code.

Adapters turn library exceptions into these (``raise ... from e``); the CLI's single
handler prints ``message`` (never a traceback) and exits with ``exit_code``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Process exit codes, the contract of the CLI (see README)."""

    OK = 0
    TESTS_FAILED = 1
    BAD_INPUT = 2
    POLICY_REFUSED = 3
    EXTERNAL_FAILURE = 4
    CANCELLED = 130


class ImmuError(Exception):
    """Base of every error the CLI reports; ``str(e)`` says what is wrong and what to do."""

    exit_code: ExitCode = ExitCode.EXTERNAL_FAILURE
    # Where the run's time went until it failed (``core.timings.Timeline.as_dict``), set by
    # ``immu run`` for ``--json`` and the log.
    timings: dict[str, Any] | None = None


class BadInput(ImmuError):
    """A spec, argument or input file is wrong (exit 2)."""

    exit_code = ExitCode.BAD_INPUT


class SpecError(BadInput):
    """``immu.yml`` is invalid; ``problems`` holds one ``file:line: key: message`` line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class PolicyRefused(ImmuError):
    """A promotion was refused by policy or immutability rules (exit 3)."""

    exit_code = ExitCode.POLICY_REFUSED


class ExternalFailure(ImmuError):
    """An external system (engine, registry, GitHub) failed after retries (exit 4)."""

    exit_code = ExitCode.EXTERNAL_FAILURE


class EngineError(ExternalFailure):
    """The Docker engine failed or cannot be reached."""


class RegistryError(ExternalFailure):
    """The container registry failed, refused access, or answered inconsistently."""


class GitHubError(ExternalFailure):
    """The GitHub API failed after retries."""


class InternalError(ExternalFailure):
    """A bug or an unforeseen failure: one line, exit 4 (never 1, which means tests failed)."""


class Cancelled(ImmuError):
    """The run was interrupted (SIGINT/SIGTERM); resources were cleaned up."""

    exit_code = ExitCode.CANCELLED
