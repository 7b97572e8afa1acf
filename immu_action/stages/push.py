"""The push stage: the built image to the registry under a tag of its own, verified there,
and from then on named by digest only."""

from __future__ import annotations

import secrets

import docker

from immu_action import output
from immu_action.adapters.docker import engine, push
from immu_action.adapters.registry.client import RegistryClient
from immu_action.adapters.registry.promotion import Registries
from immu_action.adapters.registry.verify import verify_pushed
from immu_action.core.context import GitHubContext
from immu_action.core.manifests import MANIFEST_TYPES, config_digest
from immu_action.core.references import parse_reference
from immu_action.core.tags import ref_info, render_tags, tag_problem
from immu_action.errors import BadInput, PolicyRefused
from immu_action.spec import PromoteSpec, Spec
from immu_action.stages.build import BuildResult


def staging_tag(spec: Spec, *, sha: str, ctx: GitHubContext | None) -> str:
    """``<promote.staging-tag>-<run id>.<attempt>`` (``-local-<random>`` off Actions): a tag
    of this push alone, which no promotion template renders and no later push reuses."""
    template = (spec.promote or PromoteSpec()).staging_tag
    if not sha:
        raise BadInput("pushing needs a commit: run inside a git checkout (or GitHub Actions)")
    rendered = render_tags([template], ref_info(ctx.ref if ctx else "", sha))
    if not rendered.tags:
        reason = "; ".join(r for _, r in rendered.skipped)
        raise BadInput(f"{spec.path}: promote.staging-tag {template!r} cannot render: {reason}")
    run = f"{ctx.run_id}.{ctx.run_attempt or 1}" if ctx and ctx.run_id \
        else f"local-{secrets.token_hex(4)}"
    tag = f"{rendered.tags[0]}-{run}"
    problem = tag_problem(tag)
    if problem:
        raise BadInput(f"{spec.path}: promote.staging-tag {template!r} renders {problem}")
    return tag


def push_image(client: docker.DockerClient, spec: Spec, built: BuildResult, *, sha: str,
               ctx: GitHubContext | None, insecure: bool) -> tuple[str, str, str]:
    """Push under the staging tag, verify against the registry; (digest, image ID, tag).

    A push never moves a tag to another image: the staging tag is this run's own. One that
    already holds this very image (the same run pushed again, as ``act`` numbers every run 1)
    is pushed again; one holding another image refuses the push.
    """
    tag = staging_tag(spec, sha=sha, ctx=ctx)
    repository = spec.image.repository
    ref = parse_reference(f"{repository}:{tag}")
    registry = Registries(insecure=insecure).get(ref.host)
    existing = registry.head_manifest(ref.repository, tag)
    if existing is not None and not _holds(registry, ref.repository, existing, built.image_id):
        raise PolicyRefused(f"{repository}:{tag} already exists (at {existing}, another image): "
                            "a push never moves a tag; give promote.staging-tag a prefix of "
                            "its own")
    client.images.get(built.image_id).tag(repository, tag)
    with output.fenced_group(f"Push {repository}:{tag}"):
        engine_digest = push.push(client, repository, tag, auth=push.auth_from_env(),
                                  log=output.log_to_stderr)
    pushed = verify_pushed(repository, tag, built.image_id, insecure=insecure, client=registry)
    if pushed.manifest_digest != engine_digest:
        output.log_to_stderr(f"note: engine reported {engine_digest}, registry serves "
                             f"{pushed.manifest_digest} (the registry's is used)\n")
    # From here on the image is named by digest only; resolve it to the engine's image ID.
    with output.untrusted_output():
        image_id = engine.ensure_image(client, f"{repository}@{pushed.manifest_digest}",
                                       what="image under test", log=output.log_to_stderr)
    return pushed.manifest_digest, image_id, tag


def _holds(registry: RegistryClient, repository: str, digest: str, image_id: str) -> bool:
    """True when the manifest ``digest`` is an image whose config is ``image_id``."""
    manifest = registry.get_manifest(repository, digest)
    return manifest.media_type in MANIFEST_TYPES and config_digest(
        manifest.data, manifest.media_type) == image_id
