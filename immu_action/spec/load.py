"""``immu.yml`` (version 1) text -> frozen dataclasses; errors name ``file:line: key``.

``load_spec`` reads a file and raises ``SpecError`` listing *every* problem, one
``immu.yml:LINE: key.path: what is wrong (what would be valid)`` line each, sorted by line.
Key and type checks come from the declarative ``spec_rules.SPEC`` (which also renders the JSON
Schema); the checks across values (service references, build contexts on disk, ``mutable``
within ``tags``) are here. YAML keys use dashes; fields use underscores, durations ``*_s``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from immu_action.core.immutability import FloatingRule
from immu_action.errors import BadInput, SpecError
from immu_action.spec.kinds import INVALID
from immu_action.spec.nodes import Problem, Walk, compose
from immu_action.spec.rules import SPEC

T = TypeVar("T")
RESERVED_PREFIX = "immu-"  # immu-staging-*, immu-audit-*, immu-buildcache
BUILD_CACHE_TAG = "immu-buildcache"

__all__ = [
    "BuildSpec", "HealthcheckSpec", "ImageSpec", "Problem", "PromoteSpec", "SecretSpec",
    "ServiceSpec",
    "Spec", "SuiteSpec", "load_spec", "validate_file", "validate_text",
]


@dataclass(frozen=True, kw_only=True)
class SecretSpec:
    """A build secret's source: an environment variable or a file (absolute)."""

    env: str | None = None
    file: Path | None = None


@dataclass(frozen=True, kw_only=True)
class BuildSpec:
    """How to build an image: context (absolute), Dockerfile (relative to it), target, args;
    for the image under test also its build secrets and registry cache (None: off)."""

    context: Path
    dockerfile: str = "Dockerfile"
    target: str | None = None
    build_args: Mapping[str, str]
    labels: Mapping[str, str]
    secrets: Mapping[str, SecretSpec] = dataclasses.field(default_factory=dict)
    cache: str | None = None


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
    junit: bool = True
    shard: str = "split"  # "split" or "whole": see the key's doc in spec.rules


@dataclass(frozen=True, kw_only=True)
class PromoteSpec:
    """Which refs may promote, to which tag templates, and which tags may move."""

    branches: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    mutable: tuple[str, ...] = ()
    floating: FloatingRule = "highest"
    environment: str = "production"
    staging_tag: str = "immu-staging-{sha}"


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
    spec, problems = validate_file(path)
    if spec is None:
        raise SpecError([problem.render(str(path)) for problem in problems])
    return spec


def validate_file(path: Path) -> tuple[Spec | None, list[Problem]]:
    """``validate_text`` of the file's content; ``BadInput`` naming a missing/unreadable file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise BadInput(f"{path}: no such file (create it, or pass -f PATH)") from e
    except IsADirectoryError as e:
        raise BadInput(f"{path}: is a directory (pass the spec file with -f PATH)") from e
    except OSError as e:
        raise BadInput(f"{path}: cannot read: {e.strerror} (check the path and "
                       "its permissions)") from e
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        return None, [Problem(line=line, path="(file)", message=f"byte 0x{data[e.start]:02x} "
                              "is not UTF-8", hint="save the file as UTF-8")]
    return validate_text(text, path=path)


def validate_text(text: str, *, path: Path) -> tuple[Spec | None, list[Problem]]:
    """``(spec, [])`` when ``text`` is valid, else ``(None, problems sorted by line)``.

    ``path`` locates build contexts (relative to its directory) and is kept in ``Spec.path``.
    """
    walk = Walk()
    root = compose(text, walk)
    if root is None and not walk.problems:
        walk.add(1, "(document)", "the file is empty",
                 "a mapping with `version: 1`, `image` and `tests`")
    try:
        raw = SPEC.walk(root, "", walk) if root is not None else INVALID
    except RecursionError:  # only a merge chain thousands of anchors long gets here
        walk.add(1, "<<", "merge keys are chained too deeply", "merge a few mappings at most")
        raw = INVALID
    if isinstance(raw, dict):
        _cross_check(raw, path.parent, walk)
    if walk.problems:
        unique = list(dict.fromkeys(walk.problems))  # an alias can repeat a problem
        return None, sorted(unique, key=lambda p: p.line)
    return _convert(raw, path), []


def _cross_check(raw: dict[str, Any], base: Path, walk: Walk) -> None:
    """Checks that relate values: services named by suites, build files, mutable tags."""
    services = raw.get("services", {})
    defined = sorted(services) if isinstance(services, dict) else []
    suites = raw.get("tests", {}) if isinstance(raw.get("tests"), dict) else {}
    for name, suite in suites.items():
        if name in defined:
            walk.add(walk.lines[f"tests.{name}"], f"tests.{name}",
                     f"suite `{name}` has the name of a service",
                     "suite and service names share the test network's aliases")
        needed = suite.get("services", ()) if isinstance(suite, dict) else ()
        for index, service in enumerate(needed if isinstance(needed, tuple) else ()):
            where = f"tests.{name}.services[{index}]"
            if service is not INVALID and isinstance(services, dict) and service not in defined:
                listed = ", ".join(defined) if defined else "none are defined under `services`"
                walk.add(walk.lines[where], where, f"unknown service `{service}`",
                         f"defined: {listed}")
    image = raw.get("image")
    if isinstance(image, dict):
        _check_build(image, "image", base, walk)
    for name, service in (services.items() if isinstance(services, dict) else ()):
        if isinstance(service, dict) and isinstance(service.get("build"), dict):
            _check_build(service["build"], f"services.{name}.build", base, walk)
    promote = raw.get("promote")
    for index, template in enumerate(promote.get("tags", ()) if isinstance(promote, dict)
                                     and isinstance(promote.get("tags"), tuple) else ()):
        if template is not INVALID and template.startswith(RESERVED_PREFIX):
            where = f"promote.tags[{index}]"
            walk.add(walk.lines[where], where, f"`{template}` starts with `{RESERVED_PREFIX}`",
                     "that prefix is immu's own (staging, audit and build-cache tags)")
    if isinstance(promote, dict) and isinstance(promote.get("mutable"), tuple):
        tags = promote.get("tags", ())
        for index, tag in enumerate(promote["mutable"]):
            where = f"promote.mutable[{index}]"
            if tag is not INVALID and isinstance(tags, tuple) and tag not in tags:
                valid = ", ".join(t for t in tags if t is not INVALID) or "none are valid"
                walk.add(walk.lines[where], where, f"`{tag}` is not one of promote.tags",
                         f"list only entries of promote.tags: {valid}")


def _check_build(build: dict[str, Any], path: str, base: Path, walk: Walk) -> None:
    """The context directory exists (relative to the spec) and holds the Dockerfile."""
    context, dockerfile = build.get("context", "."), build.get("dockerfile", "Dockerfile")
    if INVALID in (context, dockerfile):
        return
    directory = base / context
    line = walk.lines.get(f"{path}.context", walk.lines.get(path, 1))
    if not directory.is_dir():
        walk.add(line, f"{path}.context", f"directory `{context}` not found",
                 f"a directory relative to {base.resolve()}")
    elif not (directory / dockerfile).is_file():
        line = walk.lines.get(f"{path}.dockerfile", line)
        walk.add(line, f"{path}.dockerfile", f"`{dockerfile}` not found in {directory.resolve()}",
                 "create it, or set `dockerfile` to its path within the context")


def _convert(raw: dict[str, Any], path: Path) -> Spec:
    """Valid raw values -> dataclasses (defaults come from the dataclasses themselves)."""
    base = path.parent
    image = raw["image"]
    promote = raw.get("promote")
    return Spec(
        path=path,
        version=raw["version"],
        image=ImageSpec(repository=image["repository"], build=dataclasses.replace(
            _build(image, base),
            secrets={sid: SecretSpec(env=s.get("env"), file=(base / s["file"]).resolve()
                                     if "file" in s else None)
                     for sid, s in image.get("secrets", {}).items()},
            cache=_cache_ref(image))),
        services={name: _service(name, value, base)
                  for name, value in raw.get("services", {}).items()},
        tests={name: _fill(SuiteSpec, value, name=name, env=value.get("env", {}))
               for name, value in raw["tests"].items()},
        promote=_promote(promote) if promote is not None else None,
    )


def _cache_ref(image: dict[str, Any]) -> str | None:
    """``image.cache``; absent: ``<repository>:immu-buildcache``; ``off``: None."""
    ref = str(image.get("cache", f"{image['repository']}:{BUILD_CACHE_TAG}"))
    return None if ref == "off" else ref


def _build(raw: dict[str, Any], base: Path) -> BuildSpec:
    return BuildSpec(
        context=(base / raw.get("context", ".")).resolve(),
        dockerfile=raw.get("dockerfile", "Dockerfile"),
        target=raw.get("target"),
        build_args=raw.get("build-args", {}),
        labels=raw.get("labels", {}),
    )


def _service(name: str, raw: dict[str, Any], base: Path) -> ServiceSpec:
    health = raw.get("healthcheck")
    return _fill(
        ServiceSpec, raw, name=name, image=raw.get("image"), env=raw.get("env", {}),
        build=_build(raw["build"], base) if "build" in raw else None,
        healthcheck=_fill(HealthcheckSpec, health) if health is not None else None,
    )


def _promote(raw: dict[str, Any]) -> PromoteSpec:
    return _fill(PromoteSpec, raw)


def _fill(cls: type[T], raw: Mapping[str, Any], **given: Any) -> T:
    """``cls`` from YAML keys (``start-period`` -> ``start_period_s``), ``given`` first."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs = dict(given)
    for key, value in raw.items():
        name = key.replace("-", "_")
        name = f"{name}_s" if f"{name}_s" in names else name
        if name in names and name not in kwargs:
            kwargs[name] = value
    return cls(**kwargs)
