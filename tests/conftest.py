"""Shared pytest plugins: fixtures live in tests/support/ modules."""

pytest_plugins = ["tests.support.sweep", "tests.support.docker_env"]
