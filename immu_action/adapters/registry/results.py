"""Test results stored with a digest: read back every test-result statement attached to it
(``core.attestation``), each checked against the digest it must name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from immu_action.adapters.pool import HelperPool
from immu_action.adapters.registry.client import RegistryClient, RegistryHTTPError
from immu_action.adapters.registry.promotion import Registries
from immu_action.adapters.registry.referrers import list_referrers
from immu_action.core.attestation import (
    IN_TOTO,
    PREDICATE_ANNOTATION,
    TEST_RESULT,
    RunVerdict,
    StoredResult,
    by_run,
    read_statement,
    statement_layer,
)
from immu_action.core.manifests import digest_of
from immu_action.core.references import parse_reference
from immu_action.core.referrers import Referrer, subject_of
from immu_action.errors import BadInput

STATEMENT_LIMIT = 64 << 20  # a statement lists test names: generous, never unbounded


def stored_results(client: RegistryClient, repo: str,
                   digest: str) -> tuple[list[StoredResult], list[str]]:
    """The statements of ``digest`` (oldest listed first) and a note for each listed
    artifact that is not a valid one (wrong subject, bad digest, not a test result)."""
    entries = [e for e in list_referrers(client, repo, digest, IN_TOTO)
               if e.annotations.get(PREDICATE_ANNOTATION, TEST_RESULT) == TEST_RESULT]
    if not entries:
        return [], []
    with HelperPool(max_workers=min(8, len(entries))) as pool:
        found = list(pool.map(lambda e: _one(client, repo, digest, e), entries))
    return ([r for r in found if isinstance(r, StoredResult)],
            [r for r in found if isinstance(r, str)])


def _one(client: RegistryClient, repo: str, digest: str, entry: Referrer) -> StoredResult | str:
    try:
        manifest = client.get_manifest(repo, entry.digest)
        if subject_of(manifest.data) != digest:
            return f"{entry.digest}: listed for {digest} but its subject is another manifest"
        layer = statement_layer(manifest.data)
        if layer is None:
            return f"{entry.digest}: no test-result statement layer"
        blob_digest, size = layer
        if size > STATEMENT_LIMIT:
            return f"{entry.digest}: statement of {size} bytes is over the limit"
        data = b"".join(client.blob_stream(repo, blob_digest)())
        if digest_of(data, blob_digest.split(":", 1)[0]) != blob_digest:
            return f"{entry.digest}: its statement blob does not hash to {blob_digest}"
        return read_statement(data, digest=digest, artifact=entry.digest)
    except RegistryHTTPError as e:  # listed, yet gone (deleted, garbage-collected)
        if e.status != 404:
            raise
        return f"{entry.digest}: listed but not in the registry ({e})"
    except ValueError as e:
        return f"{entry.digest}: {e}"


@dataclass(frozen=True, kw_only=True)
class Checked:
    """The verdict over a digest's stored results: each run's, and the passing one."""

    reference: str
    digest: str
    runs: tuple[RunVerdict, ...]
    notes: tuple[str, ...]

    @property
    def passing(self) -> RunVerdict | None:
        """The newest run that passed, if any."""
        return next((v for v in self.runs if v.passed), None)

    def as_dict(self) -> dict[str, Any]:
        """JSON form (``verify --json``)."""
        return {"reference": self.reference, "digest": self.digest,
                "passed": self.passing is not None,
                "passing_run": self.passing.run if self.passing else None,
                "runs": [v.as_dict() for v in self.runs], "ignored": list(self.notes)}


def check_digest(target: str, *, run: str | None = None,
                 registries: Registries | None = None) -> Checked:
    """The stored results of ``REPOSITORY@DIGEST`` (a tag is resolved), per run."""
    ref = parse_reference(target)
    client = (registries or Registries()).get(ref.host)
    digest = ref.digest
    if digest is None:
        digest = client.head_manifest(ref.repository, ref.tag or "latest")
        if digest is None:
            raise BadInput(f"{target}: no such tag in the registry")
    found, notes = stored_results(client, ref.repository, digest)
    verdicts = by_run(found)
    if run is not None:
        verdicts = [v for v in verdicts if v.run == run]
    return Checked(reference=f"{ref.host}/{ref.repository}@{digest}", digest=digest,
                   runs=tuple(verdicts), notes=tuple(notes))
