"""A loopback GitHub REST emulator whose every request and response is checked against
GitHub's own OpenAPI description (tests/support/openapi/github-subset.json)."""

from tests.support.github_emulator.server import Call, GitHubEmulator
from tests.support.github_emulator.spec import OpenAPI

__all__ = ["Call", "GitHubEmulator", "OpenAPI"]
