"""The one declarative description of ``immu.yml`` version 1.

``SPEC.walk`` checks a document's keys, types and values; ``json_schema()`` renders the same
description as the JSON Schema shipped in ``immu_action/spec/immu.schema.json`` (a unit test
proves the shipped file is this output). Checks that need more than one value (a suite naming a
service, ``mutable`` within ``tags``, build contexts on disk) live in ``spec.py``.
"""

from __future__ import annotations

from typing import Any

from immu_action.core import naming
from immu_action.spec.kinds import (
    Check,
    Choice,
    Command,
    Const,
    Duration,
    HealthTest,
    Integer,
    StrMap,
    Text,
    TextList,
)
from immu_action.spec.shapes import Fields, Key, Names, TextOr

SCHEMA_ID = "https://github.com/immu-action/immu-action/raw/main/immu_action/spec/immu.schema.json"

_ABSOLUTE = r"^/"


def _absolute(what: str) -> Check:
    def check(value: str) -> tuple[str, str] | None:
        if not value.startswith("/"):
            return f"`{value}` is not an absolute path", f"{what} inside the container, like /app"
        return None

    return check


def _results_dir(value: str) -> tuple[str, str] | None:
    if not value.startswith("/") or value.strip("/") == "":
        return (f"`{value}` is not an absolute directory below /",
                "the container directory holding JUnit XML, like /immu/results")
    return None


_BUILD_ARGS = Key(kind=StrMap(), doc="Build arguments. Never secrets: they persist in the image.")
_TARGET = Key(kind=Text(), doc="Multi-stage target to build.")
_DOCKERFILE = Key(kind=Text(), doc="Dockerfile path relative to the context.",
                  default="Dockerfile")
_CONTEXT = Key(kind=Text(), doc="Build context directory, relative to immu.yml.", default=".")
_ENV = Key(kind=StrMap(), doc="Environment variables; values are strings.")

_SERVICE_BUILD = Fields(
    doc="Build the service image from a Dockerfile.",
    keys={"context": _CONTEXT, "dockerfile": _DOCKERFILE, "target": _TARGET,
          "build-args": _BUILD_ARGS},
)

_HEALTHCHECK = Fields(
    doc="How to tell the service is ready; suites start once it is healthy.",
    keys={
        "test": Key(kind=HealthTest(), required=True,
                    doc="Command that tells whether the service is healthy: [CMD, prog, args...], "
                        '[CMD-SHELL, "cmd"], [NONE] or a shell string.'),
        "interval": Key(kind=Duration(), doc="Time between checks.", default="1s"),
        "timeout": Key(kind=Duration(), doc="Time one check may take.", default="5s"),
        "retries": Key(kind=Integer(minimum=1), doc="Failed checks before unhealthy.",
                       default=60),
        "start-period": Key(kind=Duration(positive=False), default="0s",
                            doc="Grace period during which failures do not count."),
    },
)

SERVICE = Fields(
    doc="A container a suite needs (a database...), reachable by its name.",
    exactly_one=("image", "build"),
    keys={
        "image": Key(kind=Text(check=naming.check_image, pattern=naming.IMAGE_PATTERN),
                     doc="Image reference to run, like postgres:16 (already in the engine)."),
        "build": Key(kind=TextOr(key="context", fields=_SERVICE_BUILD),
                     doc="Build the image: a context directory or {context, dockerfile, "
                         "target, build-args}."),
        "env": _ENV,
        "command": Key(kind=Command(), doc="Command: a string (run by /bin/sh -c) or a list."),
        "healthcheck": Key(kind=_HEALTHCHECK, doc="Readiness check of the service."),
        "startup-timeout": Key(kind=Duration(), default="2m",
                               doc="Longest wait for healthy (or running, without healthcheck)."),
    },
)

SUITE = Fields(
    doc="A test suite: its command runs in a fresh container of the image under test.",
    keys={
        "command": Key(kind=Command(), required=True,
                       doc="The command that runs the tests: a string (run by /bin/sh -c) or "
                           "a list."),
        "results": Key(kind=Text(check=_results_dir, pattern=r"^/.*[^/].*$"),
                       default="/immu/results",
                       doc="Absolute container directory whose JUnit XML files are collected."),
        "services": Key(kind=TextList(), doc="Names of services this suite needs."),
        "env": _ENV,
        "workdir": Key(kind=Text(check=_absolute("a directory"), pattern=_ABSOLUTE),
                       doc="Absolute working directory in the container."),
        "user": Key(kind=Text(numbers=True), doc="User (name or uid[:gid]) to run as."),
        "timeout": Key(kind=Duration(), default="10m", doc="Longest the suite may run."),
        "junit": Key(kind=Choice(values=(True, False)), default=True,
                     doc="true: the suite must write JUnit XML under `results` (a suite that "
                         "writes none is an error); false: a plain command, counted as one "
                         "test case that passes when it exits 0."),
        "shard": Key(kind=Choice(values=("split", "whole")), default="split",
                     doc="When a run is sharded over matrix jobs (IMMU_SHARDS): split: every "
                         "shard runs the suite with IMMU_SHARD and IMMU_SHARDS set, for the "
                         "suite's runner to take its part (pytest-split, jest --shard); whole: "
                         "the suite runs whole on one shard, suites spread by their durations."),
    },
)

_TEMPLATE = Text(check=naming.check_tag_template, pattern=naming.TEMPLATE_PATTERN)

PROMOTE = Fields(
    doc="Promotion of the tested digest to release tags, by manifest copy.",
    keys={
        "branches": Key(kind=TextList(), doc="Branches that may promote (GitHub must report "
                                             "them protected)."),
        "tags": Key(kind=TextList(item=_TEMPLATE, min_items=1), required=True,
                    doc="Tag templates to promote the tested digest to; placeholders: " + ", ".join(
                        f"{{{p}}}" for p in naming.PLACEHOLDERS) + "."),
        "mutable": Key(kind=TextList(item=_TEMPLATE),
                       doc="Templates of promote.tags that may move although they are exact. "
                           "Floating templates (no {version}, {patch}, {sha}, {short_sha}: "
                           "{major}, {major}.{minor}, latest...) always move; exact ones never "
                           "do unless listed here."),
        "floating": Key(kind=Choice(values=("highest", "newest")), default="highest",
                        doc="On a release, where floating tags go: highest (only forward: a "
                            "patch of an older line leaves {major} and latest on the higher "
                            "release) or newest (to every new release)."),
        "environment": Key(kind=Text(), default="production",
                           doc="GitHub environment of the promotion deployment."),
        "staging-tag": Key(kind=_TEMPLATE, default="immu-staging-{sha}",
                           doc="Prefix of the tag the built image is pushed under before "
                               "tests; immu appends the run (-<run id>.<attempt>, or -local-"
                               "<random>) so that a push never overwrites a tag. Let registry "
                               "retention delete these tags after a few days."),
    },
)

_SECRET = Fields(
    doc="Where a build secret comes from: an environment variable or a file.",
    exactly_one=("env", "file"),
    keys={
        "env": Key(kind=Text(), doc="Environment variable holding the secret at build time."),
        "file": Key(kind=Text(), doc="File holding the secret, relative to immu.yml."),
    },
)

IMAGE = Fields(
    doc="The image under test: built once, tested, then promoted by digest.",
    keys={
        "repository": Key(kind=Text(check=naming.check_repository,
                                    pattern=naming.REPOSITORY_PATTERN), required=True,
                          doc="Repository to push builds to and promote in, without tag; like "
                              "registry.example.com/team/app."),
        "context": _CONTEXT,
        "dockerfile": _DOCKERFILE,
        "target": _TARGET,
        "build-args": _BUILD_ARGS,
        "labels": Key(kind=StrMap(), doc="OCI labels; labels from git are added for you."),
        "secrets": Key(kind=Names(what="secret", entry=_SECRET, check=naming.check_secret_id,
                                  pattern=naming.SECRET_ID_PATTERN),
                       doc="Build secrets by id, for RUN --mount=type=secret,id=ID (BuildKit): "
                           "never in the image, its history, labels, build args or the log."),
        "cache": Key(kind=Text(check=naming.check_cache_ref, pattern=naming.CACHE_REF_PATTERN),
                     doc="Build cache in the registry (BuildKit): imported on every build, "
                         "exported when the run pushes; `off` for none. Default: "
                         "<repository>:immu-buildcache."),
    },
)

SPEC = Fields(
    doc="immu.yml: build once, test the very image that ships, promote that digest.",
    extensions=True,
    keys={
        "version": Key(kind=Const(value=1), required=True, doc="Spec version; always 1."),
        "image": Key(kind=IMAGE, required=True, doc=IMAGE.doc),
        "services": Key(kind=Names(what="service", entry=SERVICE), doc=SERVICE.doc),
        "tests": Key(kind=Names(what="suite", entry=SUITE, min_items=1), required=True,
                     doc="Test suites by name (at least one)."),
        "promote": Key(kind=PROMOTE, doc=PROMOTE.doc),
    },
)


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``immu.yml``, derived from ``SPEC``."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "immu.yml",
        **SPEC.schema(),
    }
