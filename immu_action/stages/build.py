"""The build stage: the spec's image, labelled with the commit (OCI labels), named by ID."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from immu_action import output
from immu_action.adapters.docker import builder, probe
from immu_action.adapters.docker.built import BuiltImage, LogSink
from immu_action.adapters.git import git_facts
from immu_action.adapters.signals import cancellable
from immu_action.core.labels import GitFacts, oci_labels
from immu_action.spec import Spec

if TYPE_CHECKING:
    import docker


@dataclass(frozen=True, kw_only=True)
class BuildResult:
    """The built image: ID (= config digest), local tag and the labels it carries."""

    image_id: str
    tag: str | None
    labels: dict[str, str]
    inline_cache: str | None = None  # the cache ref to point at the pushed image
    also_tag: str | None = None  # a second name the build gave it (the staging tag)


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


@dataclass(frozen=True, kw_only=True)
class StartedBuild:
    """A build under way (``running``: buildx), or one the legacy builder does in ``finish``."""

    spec: Spec
    labels: dict[str, str]
    tag: str | None
    also_tag: str | None  # given by buildx too (the legacy builder gives ``tag`` alone)
    cache: builder.Cache | None
    running: builder.Running | None
    log: LogSink

    def stop(self) -> None:
        """Cancel the build, if one runs (nothing is left behind)."""
        if self.running is not None:
            self.running.stop()


def start(spec: Spec, *, log: LogSink, engine_info: Callable[[], Mapping[str, Any]],
          export_cache: bool = False, facts: GitFacts | None = None,
          also_tag: str | None = None) -> StartedBuild:
    """Launch the build of the spec's image, labelled with OCI labels from git, and return
    at once (from the main thread); ``finish`` gives the image. ``engine_info``: the
    engine's ``/info``, asked only when the cache mode depends on the image store.

    With BuildKit the registry cache (``image.cache``) is imported, and exported when
    ``export_cache`` (the run pushes): every stage (``mode=max``) on the containerd image
    store, inline in the image on the classic one (``BuildResult.inline_cache``: the push
    stage then points the cache tag at the pushed image). Without buildx nothing starts
    here (the engine API's builder runs in ``finish``), but a Dockerfile that needs
    BuildKit is refused at once. ``facts``: the checkout's, if the caller has them;
    ``also_tag``: a second name buildx gives the image (the run's staging tag).
    """
    facts = facts or git_facts(spec.path.parent)
    created = created_time(facts.commit_time, dirty=facts.dirty)
    labels = oci_labels(facts, created=created)
    tag = local_tag(spec, facts.sha)
    reproducible = os.environ.get("SOURCE_DATE_EPOCH", "").isdigit() or (
        facts.commit_time is not None and not facts.dirty)
    buildx = builder.find_buildx()
    if buildx is None:
        builder.refuse_without_buildkit(spec.image.build, "image")
        return StartedBuild(spec=spec, labels=labels, tag=tag, also_tag=None,
                            cache=None, running=None, log=log)
    ref = spec.image.build.cache
    cache = None
    if ref is not None:
        containerd = export_cache and probe.store_is_containerd(engine_info())
        mode = "max" if not export_cache or containerd else "inline"
        cache = builder.Cache(ref=ref, export=export_cache, mode=mode)
    running = builder.start(buildx, spec.image.build, labels=labels, tag=tag, log=log,
                            what="image", cache=cache,
                            epoch=int(created.timestamp()) if reproducible else None,
                            also_tag=also_tag)
    return StartedBuild(spec=spec, labels=labels, tag=tag, also_tag=also_tag,
                        cache=cache, running=running, log=log)


def finish(started: StartedBuild, client: docker.DockerClient, *,
           known: str | None = None) -> BuildResult:
    """Wait for the build ``start`` launched (or run the legacy one): the image's ID.
    ``known``: the engine's ID for what the export named, if the run asked already."""
    if started.running is not None:
        built: BuiltImage = started.running.wait(client, known=known)
    else:
        built = builder.build(client, started.spec.image.build, labels=started.labels,
                              tag=started.tag, log=started.log, what="image")
    return exported(started, built.image_id, labels=built.labels)


def exported(started: StartedBuild, image_id: str, *,
             labels: Mapping[str, str] | None = None) -> BuildResult:
    """What ``finish`` gives for ``started`` when the image is ``image_id`` (buildx labels
    it with ``started.labels``): for a run that goes on while BuildKit still exports the
    cache (``finish`` checks buildx's result then)."""
    cache = started.cache
    inline = cache.ref if cache is not None and cache.export and cache.mode == "inline" \
        else None
    return BuildResult(image_id=image_id, tag=started.tag,
                       labels=dict(started.labels if labels is None else labels),
                       inline_cache=inline, also_tag=started.also_tag)


def build(client: docker.DockerClient, spec: Spec, *, log: LogSink,
          export_cache: bool = False) -> BuildResult:
    """``start`` then ``finish``: the spec's image, in a log group of its own."""
    with cancellable(), output.fenced_group(f"Build {spec.image.repository}"):
        started = start(spec, log=log, export_cache=export_cache,
                        engine_info=lambda: engine_info(lambda: client))
        try:
            return finish(started, client)
        except BaseException:
            started.stop()
            raise


def engine_info(client: Callable[[], docker.DockerClient]) -> dict[str, Any]:
    """The engine's ``/info``: over its Unix socket without docker-py, else through the
    docker-py ``client()`` (a TCP, SSH or TLS engine)."""
    info = probe.engine_info(probe.engine_host())
    if info is not None:
        return info
    from immu_action.adapters.docker import engine

    return engine.info(client())
