"""``immu.yml`` (version 1) text -> frozen dataclasses; errors name ``file:line: key``.

(Loader to be completed: see load_spec.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class BuildSpec:
    """How to build an image: context (absolute), Dockerfile (relative to it), target, args."""

    context: Path
    dockerfile: str = "Dockerfile"
    target: str | None = None
    build_args: Mapping[str, str]
    labels: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class ImageSpec:
    """The image under test and where it is pushed/promoted."""

    repository: str
    build: BuildSpec


@dataclass(frozen=True, kw_only=True)
class HealthcheckSpec:
    """A Docker healthcheck: ``test`` as in Compose (``[CMD, ...]``, ``[CMD-SHELL, "..."]``)."""

    test: tuple[str, ...]
    interval_s: float = 1.0
    timeout_s: float = 5.0
    retries: int = 60
    start_period_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class ServiceSpec:
    """A service container (database...) a suite needs, from an image or built from the spec."""

    name: str
    image: str | None
    build: BuildSpec | None
    env: Mapping[str, str]
    command: tuple[str, ...] | None = None
    healthcheck: HealthcheckSpec | None = None
    # Upper bound on waiting for "healthy" (or "running" when there is no healthcheck).
    startup_timeout_s: float = 120.0


@dataclass(frozen=True, kw_only=True)
class SuiteSpec:
    """A test suite: a command run in a fresh container of the image under test."""

    name: str
    command: tuple[str, ...]
    results: str = "/immu/results"
    services: tuple[str, ...] = ()
    env: Mapping[str, str]
    workdir: str | None = None
    user: str | None = None
    timeout_s: float = 600.0


@dataclass(frozen=True, kw_only=True)
class PromoteSpec:
    """Which refs may promote, to which tag templates, and which tags may move."""

    branches: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    mutable: tuple[str, ...] = ("latest",)
    environment: str = "production"
    staging_tag: str = "sha-{sha}"


@dataclass(frozen=True, kw_only=True)
class Spec:
    """A validated ``immu.yml``."""

    path: Path
    version: int
    image: ImageSpec
    services: Mapping[str, ServiceSpec]
    tests: Mapping[str, SuiteSpec]
    promote: PromoteSpec | None = None


def load_spec(path: Path) -> Spec:
    """Read, validate and convert ``path``; raises ``SpecError`` listing every problem."""
    raise NotImplementedError
