"""The staging tag: the tag of one run's push, which the build already gives the image (so
the push needs no tag call) and the registry is asked about while BuildKit works. Imported
before the build starts: nothing here imports docker-py or requests at its top."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from immu_action.core.context import GitHubContext
from immu_action.core.references import parse_reference
from immu_action.core.tags import ref_info, render_tags, tag_problem
from immu_action.errors import BadInput
from immu_action.spec import PromoteSpec, Spec

if TYPE_CHECKING:
    from immu_action.adapters.registry.promotion import Registries


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
        else f"local-{os.urandom(4).hex()}"
    tag = f"{rendered.tags[0]}-{run}"
    problem = tag_problem(tag)
    if problem:
        raise BadInput(f"{spec.path}: promote.staging-tag {template!r} renders {problem}")
    return tag


def staging_holds(spec: Spec, tag: str, *, registries: Registries) -> str | None:
    """The digest the registry holds under the staging ``tag`` (None: the tag is free). Asked
    while the image builds: a registry that refuses the credentials fails the run then."""
    ref = parse_reference(f"{spec.image.repository}:{tag}")
    return registries.get(ref.host).head_manifest(ref.repository, tag)
