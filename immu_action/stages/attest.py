"""The attest stage: the run's test results as an in-toto statement (``core.attestation``),
written to files for ``actions/attest`` and, once the image is pushed, stored in the
registry attached to the tested digest (``adapters.registry.referrers``)."""

from __future__ import annotations

import datetime
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from immu_action.adapters.registry.promotion import Registries
from immu_action.adapters.registry.referrers import attach
from immu_action.core.attestation import (
    TEST_RESULT,
    Case,
    Configuration,
    RunIdentity,
    SuiteFacts,
    encode,
    statement,
    statement_manifest,
)
from immu_action.core.context import GitHubContext
from immu_action.core.junit import iter_cases
from immu_action.core.manifests import digest_of
from immu_action.core.references import parse_reference
from immu_action.core.results import RunResult, SuiteResult
from immu_action.core.sharding import Shard
from immu_action.spec import Spec


@dataclass(frozen=True, kw_only=True)
class Attested:
    """Where the statement went: files, and the artifact in the registry once pushed."""

    result: str
    statement_path: Path
    predicate_path: Path
    predicate_type: str = TEST_RESULT
    artifact: str | None = None  # repository@digest of the stored artifact

    def as_dict(self) -> dict[str, Any]:
        """JSON form (the ``attestation`` of ``run --json``)."""
        return {"result": self.result, "predicate_type": self.predicate_type,
                "statement_path": str(self.statement_path),
                "predicate_path": str(self.predicate_path), "artifact": self.artifact}


def identity(ctx: GitHubContext | None, *, sha: str | None,
             shard: Shard | None = None) -> RunIdentity:
    """The run that writes: the Actions run and attempt, or a fresh local one."""
    if ctx is None:
        return RunIdentity(run=f"local-{secrets.token_hex(4)}", commit=sha or None,
                           shard=shard)
    return RunIdentity(run=f"{ctx.run_id}.{ctx.run_attempt or 1}", url=ctx.run_url,
                       commit=sha or ctx.sha, shard=shard)


def suite_facts(suite: SuiteResult) -> SuiteFacts:
    """A suite with its test cases, read again from its JUnit files; a crash or a plain
    command (no JUnit) is the one case its results hold."""
    cases = [Case(suite=suite.name, name=name, status=status,  # type: ignore[arg-type]
                  duration_s=seconds)
             for path in suite.junit_files for _, name, status, seconds in iter_cases(Path(path))]
    listed = {c.name for c in cases}
    for failure in suite.results.failures:
        name = f"{failure.classname}.{failure.name}" if failure.classname else failure.name
        if name not in listed:
            cases.append(Case(suite=suite.name, name=name, status="failed", duration_s=0.0))
    if not suite.junit_files and not cases and suite.results.totals.passed:
        cases.append(Case(suite=suite.name, name=f"{suite.name} (command)", status="passed",
                          duration_s=suite.duration_s))
    return SuiteFacts(name=suite.name, status=suite.status.value, exit_code=suite.exit_code,
                      duration_s=suite.duration_s, totals=suite.results.totals.as_dict(),
                      cases=tuple(cases),
                      failures=tuple(f.as_dict() for f in suite.results.failures))


def _ok(result: RunResult, shard: Shard | None) -> bool:
    """Green: every suite passed. A whole run also needs a test case; one shard may have no
    suite of its own (suites spread), the gather job checks the run had tests."""
    if shard is None:
        return result.ok
    return result.failure is None and all(s.status.value == "passed" for s in result.suites)


def attest(spec: Spec, result: RunResult, *, who: RunIdentity, results_root: Path,
           services: Mapping[str, str], ctx: GitHubContext | None = None,
           registries: Registries | None = None) -> Attested:
    """Write the statement of ``result`` (files always; the registry when it was pushed)."""
    subject = result.digest or result.image_id
    spec_bytes = spec.path.read_bytes()
    uri = None
    if ctx is not None and who.commit:
        uri = f"{ctx.server_url}/{ctx.repository}/blob/{who.commit}/{spec.path.name}"
    doc = statement(
        repository=spec.image.repository, digest=subject, ok=_ok(result, who.shard),
        totals=result.totals.as_dict(), suites=[suite_facts(s) for s in result.suites],
        config=Configuration(spec_name=spec.path.name,
                             spec_sha256=hashlib.sha256(spec_bytes).hexdigest(),
                             services=services, spec_uri=uri),
        identity=who, image_id=result.image_id, tested_is_shipped=result.tested_is_shipped,
        time=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds"))
    out = results_root / "attestation"
    out.mkdir(parents=True, exist_ok=True)
    data = encode(doc)
    (out / "statement.intoto.json").write_bytes(data)
    (out / "predicate.json").write_text(
        json.dumps(doc["predicate"], indent=1, sort_keys=True) + "\n")
    attested = Attested(result=doc["predicate"]["result"],
                        statement_path=out / "statement.intoto.json",
                        predicate_path=out / "predicate.json")
    if result.digest is None:
        return attested
    ref = parse_reference(spec.image.repository)
    client = (registries or Registries()).get(ref.host)
    target = client.get_manifest(ref.repository, result.digest)
    manifest = statement_manifest(statement_bytes=data, subject_digest=target.digest,
                                  subject_size=len(target.data),
                                  subject_media_type=target.media_type)
    entry = attach(client, ref.repository, manifest, subject=target.digest,
                   blobs={digest_of(data): data})
    return Attested(result=attested.result, statement_path=attested.statement_path,
                    predicate_path=attested.predicate_path,
                    artifact=f"{spec.image.repository}@{entry.digest}")
