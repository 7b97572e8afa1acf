"""A tag's history in the registry: ``trace`` (the digest behind a tag, its provenance and
audit trail) and ``rollback`` (re-point a mutable tag to an earlier promoted digest)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from immu_action.adapters.pool import HelperPool
from immu_action.adapters.registry.audit import history
from immu_action.adapters.registry.promotion import (
    DEFAULT_MUTABLE,
    PromotionResult,
    Provenance,
    Registries,
    promote,
)
from immu_action.adapters.registry.results import stored_results
from immu_action.core.attestation import RunVerdict, by_run
from immu_action.core.audit import AuditRecord, earlier_digests, rollback_candidates
from immu_action.core.references import parse_reference
from immu_action.errors import BadInput, PolicyRefused


def rollback(target: str, *, to: str | None = None, steps: int = 1,
             mutable: Collection[str] = DEFAULT_MUTABLE, provenance: Provenance | None = None,
             registries: Registries | None = None) -> PromotionResult:
    """Re-point ``REPO:TAG`` to an earlier promoted digest (``to`` or ``steps`` back)."""
    ref = parse_reference(target)
    if ref.tag is None or ref.digest:
        raise BadInput(f"{target!r}: roll back a tag (REPOSITORY:TAG)")
    if ref.tag not in mutable:
        raise PolicyRefused(f"rollback refused: {ref} is immutable; only tags declared "
                            f"mutable move (pass --mutable {ref.tag} if it is meant to move)")
    if steps < 1:
        raise BadInput(f"--steps {steps}: must be 1 or more")
    registries = registries or Registries()
    client = registries.get(ref.host)
    current = client.head_manifest(ref.repository, ref.tag)
    records = history(client, ref.repository, ref.tag)
    candidates = rollback_candidates([r for _, r in records], current)
    if to is not None:
        # --to may also roll forward to a digest an earlier rollback moved away from.
        promoted = {r.digest for _, r in records if r.action == "promote"} - {current}
        if to not in promoted:
            raise BadInput(f"--to {to}: not an earlier promoted digest of {ref}; "
                           f"candidates: {', '.join(sorted(promoted)) or 'none'}")
        wanted = to
    elif steps <= len(candidates):
        wanted = candidates[steps - 1]
    else:
        raise BadInput(f"--steps {steps}: {ref} has only {len(candidates)} earlier promoted "
                       "digest(s) in its audit trail (see `immu trace`)")
    source = f"{ref.host}/{ref.repository}@{wanted}"
    return promote(source, [ref.tag], mutable=mutable, provenance=provenance,
                   registries=registries, action="rollback")


@dataclass(frozen=True, kw_only=True)
class TraceResult:
    """What is behind a tag now, and its audit history (newest first)."""

    reference: str
    digest: str | None
    records: tuple[tuple[str, AuditRecord], ...]
    # digest -> the verdict of each run whose results are stored with it (newest first)
    results: Mapping[str, tuple[RunVerdict, ...]] = field(default_factory=dict)

    @property
    def in_sync(self) -> bool:
        """False when the tag moved outside immu (its digest is not the newest record's)."""
        return bool(self.records) and self.records[0][1].digest == self.digest

    @property
    def provenance(self) -> AuditRecord | None:
        """The promotion that vouches for the current digest (after a rollback: the
        original promotion of the digest rolled back to), None if immu never promoted it."""
        same = [r for _, r in self.records if r.digest == self.digest] if self.in_sync else []
        promoted = [r for r in same if r.action == "promote"]
        found = promoted or same
        return found[0] if found else None

    def as_dict(self) -> dict[str, Any]:
        """JSON form: the current digest, its provenance (commit, run, tests), the history."""
        newest = self.provenance
        return {"reference": self.reference, "digest": self.digest, "in_sync": self.in_sync,
                "commit": newest.commit if newest else None,
                "run_url": newest.run_url if newest else None,
                "tests": dict(newest.tests) if newest and newest.tests else None,
                "history": [{"record": d, **r.as_dict()} for d, r in self.records],
                "earlier_digests": earlier_digests(self.records, self.digest),
                "results": {d: [v.as_dict() for v in vs] for d, vs in self.results.items()}}


RESULTS_FOR = 20  # digests whose stored test results a trace reads


def trace(target: str, *, limit: int = 100,
          registries: Registries | None = None) -> TraceResult:
    """The digest behind ``REPO:TAG`` and the tag's audit trail."""
    ref = parse_reference(target)
    if ref.tag is None or ref.digest:
        raise BadInput(f"{target!r}: trace a tag (REPOSITORY:TAG)")
    client = (registries or Registries()).get(ref.host)
    digest = client.head_manifest(ref.repository, ref.tag)
    records = history(client, ref.repository, ref.tag, limit)
    digests = list(dict.fromkeys(
        [d for d in (digest, *(r.digest for _, r in records)) if d]))[:RESULTS_FOR]
    results: dict[str, tuple[RunVerdict, ...]] = {}
    if digests:
        with HelperPool(max_workers=min(8, len(digests))) as pool:
            found = pool.map(lambda d: stored_results(client, ref.repository, d)[0], digests)
            results = {d: tuple(by_run(rs)) for d, rs in zip(digests, found, strict=True)}
    return TraceResult(reference=str(ref), digest=digest, records=tuple(records),
                       results=results)
