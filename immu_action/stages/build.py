"""The build stage: the spec's image, labelled with the commit (OCI labels), named by ID."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone

import docker

from immu_action import output
from immu_action.adapters.docker import builder, engine
from immu_action.adapters.git import git_facts
from immu_action.adapters.signals import cancellable
from immu_action.core.labels import oci_labels
from immu_action.spec import Spec


@dataclass(frozen=True, kw_only=True)
class BuildResult:
    """The built image: ID (= config digest), local tag and the labels it carries."""

    image_id: str
    tag: str | None
    labels: dict[str, str]
    inline_cache: str | None = None  # the cache ref to point at the pushed image
    pushed: str | None = None  # the reference BuildKit pushed it to during the build


def created_time(commit_time: datetime | None, *, dirty: bool) -> datetime:
    """Time for the ``created`` label.

    ``SOURCE_DATE_EPOCH`` wins; else the commit time of a clean checkout, so that
    rebuilding one commit gives the same labels and, with the layer cache, the same
    image ID; else (dirty tree, no git) the current time.
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isdigit():
        return datetime.fromtimestamp(int(epoch), tz=timezone.utc)
    if commit_time is not None and not dirty:
        return commit_time
    return datetime.now(tz=timezone.utc)


def local_tag(spec: Spec, sha: str | None) -> str | None:
    """The local tag ``immu build`` gives an image (``repository:sha-<commit>``), for
    ``immu test`` to find it; every later step names the image by ID or digest."""
    return f"{spec.image.repository}:sha-{sha}" if sha else None


def build(client: docker.DockerClient, spec: Spec, *, log: engine.LogSink,
          export_cache: bool = False, push_tag: str | None = None) -> BuildResult:
    """Build the spec's image with its labels plus OCI labels from git; return its ID.

    With BuildKit the registry cache (``image.cache``) is imported, and exported when
    ``export_cache`` (the run pushes): every stage (``mode=max``) on the containerd image
    store, inline in the image on the classic one (``BuildResult.inline_cache``: the push
    stage then points the cache tag at the pushed image).

    ``push_tag``: on the containerd store BuildKit pushes the image under it during the
    build (``BuildResult.pushed``), before the cache: its pusher mounts layers the registry
    holds in another repository instead of uploading them, and the cache export then finds
    them there. Elsewhere the push stage pushes through the engine.
    """
    facts = git_facts(spec.path.parent)
    created = created_time(facts.commit_time, dirty=facts.dirty)
    labels = oci_labels(facts, created=created)
    tag = local_tag(spec, facts.sha)
    reproducible = os.environ.get("SOURCE_DATE_EPOCH", "").isdigit() or (
        facts.commit_time is not None and not facts.dirty)
    ref = spec.image.build.cache
    cache = None
    buildx = builder.find_buildx()
    containerd = buildx is not None and (export_cache or push_tag is not None) and \
        builder.store_is_containerd(client)
    if ref is not None and buildx is not None:
        mode = "max" if not export_cache or containerd else "inline"
        cache = builder.Cache(ref=ref, export=export_cache, mode=mode)
    push = f"{spec.image.repository}:{push_tag}" if push_tag and containerd else None
    with cancellable(), output.fenced_group(f"Build {spec.image.repository}"):
        built = builder.build(client, spec.image.build, labels=labels, tag=tag, log=log,
                              what="image", cache=cache, buildx=buildx, push=push,
                              epoch=int(created.timestamp()) if reproducible else None)
    inline = cache.ref if cache is not None and cache.export and cache.mode == "inline" \
        else None
    return BuildResult(image_id=built.image_id, tag=tag, labels=dict(built.labels),
                       inline_cache=inline, pushed=push)


