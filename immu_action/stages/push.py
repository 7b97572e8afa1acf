"""The push stage: the built image to the registry under a tag of its own, verified there,
and from then on named by digest only."""

from __future__ import annotations

from dataclasses import dataclass, field

import docker

from immu_action import output
from immu_action.adapters.docker import engine, push
from immu_action.adapters.docker.builder import Running
from immu_action.adapters.docker.built import LogSink
from immu_action.adapters.registry.client import RegistryClient
from immu_action.adapters.registry.promotion import Registries, promote
from immu_action.adapters.registry.verify import verify_pushed
from immu_action.core.manifests import INDEX_TYPES, MANIFEST_TYPES, config_digest
from immu_action.core.references import parse_reference
from immu_action.errors import BadInput, ImmuError, PolicyRefused, RegistryError
from immu_action.spec import Spec
from immu_action.stages.build import BuildResult


@dataclass(frozen=True, kw_only=True)
class Pushed:
    """The pushed image: its digest (an index or a manifest), the engine's ID for it, the tag."""

    digest: str
    kind: str  # "index" or "manifest": which digest is tested and promoted
    image_id: str
    tag: str


def push_image(client: docker.DockerClient, spec: Spec, built: BuildResult, *, tag: str,
               holds: str | None, insecure: bool, registries: Registries,
               early: EarlyPush | None = None) -> Pushed:
    """Push under the staging ``tag``, verify against the registry, name the image by digest.

    A push never moves a tag to another image: the staging tag is this run's own. One that
    already holds this very image (the same run pushed again, as ``act`` numbers every run 1)
    is pushed again; one holding another image refuses the push. ``holds``: what the run's
    ``staging_holds`` found there (None: nothing). ``early``: the push ``push_while_built``
    made (and verified) of this image while BuildKit exported its cache (its log is shown
    now, its failure raised now); one of another image is pushed over (the tag is this
    run's own).
    """
    repository = spec.image.repository
    title = f"Push {repository}:{tag}"
    if early is not None and early.image_id == built.image_id:
        with output.fenced_group(title):
            output.log_to_stderr("(pushed while BuildKit exported the build cache)\n")
            for line in early.log:
                output.log_to_stderr(line)
        if early.error is not None:
            raise early.error
        assert early.pushed is not None
        pushed = early.pushed
    else:
        with output.fenced_group(title):
            if early is not None:
                output.log_to_stderr(f"the image pushed during the build ({early.image_id}) "
                                     f"is not the one built: pushing {built.image_id}\n")
            # The build named the image with the staging tag, unless the push is over one
            # made during the build (that name went to what the export gave then).
            named = early is None and built.also_tag == f"{repository}:{tag}"
            pushed = _send(client, repository, tag, built.image_id, holds=holds,
                           registry=registries.get(parse_reference(repository).host),
                           insecure=insecure, named=named, log=output.log_to_stderr)
    if built.inline_cache:
        _point_cache(built.inline_cache, f"{repository}@{pushed.digest}", insecure)
    return pushed


def _send(client: docker.DockerClient, repository: str, tag: str, image_id: str, *,
          holds: str | None, registry: RegistryClient, insecure: bool, named: bool,
          log: LogSink) -> Pushed:
    """Tag ``image_id`` ``repository:tag`` (unless the engine has it ``named`` so: the build
    did it) and push it through the engine (refused when the tag holds another image), then
    verify it in the registry and name it by digest: the pushed image, its engine ID."""
    if holds is not None and not _holds(registry, parse_reference(repository).repository,
                                        holds, image_id):
        raise PolicyRefused(f"{repository}:{tag} already exists (at {holds}, another "
                            "image): a push never moves a tag; give promote.staging-tag "
                            "a prefix of its own")
    if not named:
        engine.tag(client, image_id, f"{repository}:{tag}")
    engine_digest = push.push(client, repository, tag, auth=push.auth_from_env(), log=log)
    verified = verify_pushed(repository, tag, image_id, insecure=insecure, client=registry)
    if verified.manifest_digest != engine_digest:
        log(f"note: engine reported {engine_digest}, registry serves "
            f"{verified.manifest_digest} (the registry's is used)\n")
    # From here on the image is named by digest only; resolve it to the engine's image ID.
    engine_id = engine.ensure_image(client, f"{repository}@{verified.manifest_digest}",
                                    what="image under test", log=log)
    kind = "index" if verified.media_type in INDEX_TYPES else "manifest"
    return Pushed(digest=verified.manifest_digest, kind=kind, image_id=engine_id, tag=tag)


@dataclass(kw_only=True)
class EarlyPush:
    """The push of an image made while its build still ran (BuildKit exporting the cache)."""

    image_id: str
    pushed: Pushed | None = None  # verified in the registry, named by digest
    log: list[str] = field(default_factory=list)
    error: ImmuError | None = None  # raised when the run reaches its push stage


def push_while_built(client: docker.DockerClient, spec: Spec, running: Running, *,
                     tag: str, holds: str | None, registries: Registries,
                     insecure: bool) -> EarlyPush | None:
    """Once ``running`` has put the image in the engine's store and goes on to export the
    build cache, push the image under the staging ``tag`` (which the build named it) and
    verify it meanwhile: nothing of the push waits for the cache export. None when buildx
    ended first, or the engine does not know the exported image: ``push_image`` then pushes
    as usual. The push's log is kept for ``push_image`` (the build's log is still
    streaming), and so is its failure."""
    named = running.exported()
    try:
        image_id = engine.known_id(client, named) if named else ""
    except ImmuError:
        return None  # asked again (and reported) once buildx has ended
    if not image_id:
        return None
    early = EarlyPush(image_id=image_id)
    repository = spec.image.repository
    try:
        early.pushed = _send(client, repository, tag, image_id, holds=holds,
                             registry=registries.get(parse_reference(repository).host),
                             insecure=insecure, named=running.named(f"{repository}:{tag}"),
                             log=early.log.append)
    except ImmuError as e:
        early.error = e
    return early


def _holds(registry: RegistryClient, repository: str, digest: str, image_id: str) -> bool:
    """True when ``digest`` is this image: the engine's ID (containerd store) or an image
    manifest whose config is that ID (classic store)."""
    if digest == image_id:
        return True
    manifest = registry.get_manifest(repository, digest)
    return manifest.media_type in MANIFEST_TYPES and config_digest(
        manifest.data, manifest.media_type) == image_id


def _point_cache(ref: str, source: str, insecure: bool) -> None:
    """Inline cache lives in the image: point the cache tag at the pushed image (a manifest
    copy). A cache is an optimisation: failing to write it is a warning, not a failure."""
    try:
        promote(source, [ref], mutable=[ref.rsplit(":", 1)[1]], audit=False,
                registries=Registries(insecure=insecure))
    except ImmuError as e:
        output.warning(f"the build cache {ref} was not updated: {e}",
                       title="immu: build cache")


def pull_pushed(client: docker.DockerClient, spec: Spec, image: str, *,
                insecure: bool) -> Pushed:
    """A digest another job built and pushed (``REPOSITORY@DIGEST``): pulled by digest and
    proved to be what the registry serves under that digest, so its tests count for it."""
    ref = parse_reference(image)
    own = parse_reference(spec.image.repository)
    if not ref.digest or ref.tag:
        raise BadInput(f"image {image!r}: name a pushed digest, REPOSITORY@sha256:... (the "
                       "`image` output of the job that built it)")
    if (ref.host, ref.repository) != (own.host, own.repository):
        raise BadInput(f"image {image!r} is not in {spec.path}'s image.repository "
                       f"{spec.image.repository}")
    registry = Registries(insecure=insecure).get(ref.host)
    manifest = registry.get_manifest(ref.repository, ref.digest)
    with output.untrusted_output():
        image_id = engine.ensure_image(client, f"{spec.image.repository}@{ref.digest}",
                                       what="image under test", log=output.log_to_stderr)
    if not _holds(registry, ref.repository, ref.digest, image_id) and \
            manifest.media_type not in INDEX_TYPES:
        raise RegistryError(f"{image}: the engine pulled {image_id}, which is not that "
                            "manifest's image")
    kind = "index" if manifest.media_type in INDEX_TYPES else "manifest"
    return Pushed(digest=ref.digest, kind=kind, image_id=image_id, tag="")
