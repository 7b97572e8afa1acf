"""The promote stage: the tested digest to the spec's tags by manifest copy, floating tags
only forward, exact tags never moved (``core.immutability``), with the audit record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from immu_action import output
from immu_action.adapters.registry.promotion import Provenance, Registries, promote
from immu_action.core.context import GitHubContext
from immu_action.core.immutability import (
    HeldBack,
    held_back,
    mutable_tags,
    released_versions,
)
from immu_action.core.references import parse_reference
from immu_action.core.results import RunResult
from immu_action.core.tags import ref_info, render_tags, semver
from immu_action.spec import Spec


def promote_run(spec: Spec, result: RunResult, ctx: GitHubContext, *, sha: str,
                insecure: bool) -> dict[str, Any]:
    """Promote ``result.digest``; an exact tag that would move raises ``PolicyRefused``."""
    assert spec.promote is not None and result.digest is not None
    rendered = render_tags(list(spec.promote.tags), ref_info(ctx.ref, sha))
    for template, reason in rendered.skipped:
        output.log_to_stderr(f"tag template {template!r} skipped: {reason}\n")
    registries = Registries(insecure=insecure)
    held = _held_back(spec, rendered.pairs, ctx, registries, sha=sha)
    for h in held:
        output.log_to_stderr(f"not moved: {h.reason}\n")
    targets = [tag for tag, _ in rendered.pairs if tag not in {h.tag for h in held}]
    outcome = promote(
        f"{spec.image.repository}@{result.digest}", targets,
        mutable=mutable_tags(rendered.pairs, spec.promote.mutable),
        provenance=Provenance(commit=sha, run_url=ctx.run_url, tests=result.totals.as_dict(),
                              actor=ctx.actor),
        registries=registries,
    )
    return {**outcome.as_dict(), "environment": spec.promote.environment,
            "tags": [t.reference.rsplit(":", 1)[1] for t in outcome.tags],
            "held_back": [{"tag": h.tag, "stays_on": h.stays_on, "reason": h.reason}
                          for h in held]}


def _held_back(spec: Spec, pairs: Sequence[tuple[str, str]], ctx: GitHubContext,
               registries: Registries, *, sha: str) -> list[HeldBack]:
    """On a release, the floating tags a higher release already in the registry keeps."""
    assert spec.promote is not None
    if not ctx.tag or semver(ctx.tag) is None or spec.promote.floating == "newest":
        return []
    ref = parse_reference(spec.image.repository)
    names = registries.get(ref.host).list_tags(ref.repository)
    released = released_versions(names, spec.promote.tags)
    return held_back(pairs, version=ctx.tag.removeprefix("v"), sha=sha, released=released,
                     rule=spec.promote.floating)
