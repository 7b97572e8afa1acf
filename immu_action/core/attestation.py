"""Test results as an in-toto attestation (pure): the Statement, its OCI artifact, and the
verdict over the statements stored for a digest.

The statement (in-toto Statement v1) names the tested image by digest and carries the
test-result predicate (``https://in-toto.io/attestation/test-result/v0.1``): ``result``
(PASSED, WARNED when tests were skipped, FAILED), ``configuration`` (the spec file and the
service images, by digest), ``url`` of the run and the names of passed, warned (skipped)
and failed tests. What the predicate has no field for (counts, per-suite and per-test
durations, the run and the shard) goes in the extension field ``immuAction``.

It is stored as an OCI artifact whose ``subject`` is the tested manifest: artifact type and
layer ``application/vnd.in-toto+json``, the layer annotated ``in-toto.io/predicate-type``
(BuildKit's convention for attestation layers), so any OCI tool finds it among the digest's
referrers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from immu_action.core.manifests import digest_of
from immu_action.core.referrers import artifact_manifest
from immu_action.core.results import (
    Failure,
    RunResult,
    SuiteResult,
    SuiteStatus,
    TestResults,
    Totals,
)
from immu_action.core.sharding import Shard

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"
IN_TOTO = "application/vnd.in-toto+json"
PREDICATE_ANNOTATION = "in-toto.io/predicate-type"
EXTENSION = "immuAction"
RESULT_ANNOTATION = "io.immu.result"
RUN_ANNOTATION = "io.immu.run"
SHARD_ANNOTATION = "io.immu.shard"
CREATED_ANNOTATION = "org.opencontainers.image.created"
Verdict = Literal["PASSED", "WARNED", "FAILED"]
PASSING: frozenset[str] = frozenset({"PASSED", "WARNED"})


@dataclass(frozen=True, kw_only=True)
class Case:
    """One test case as the statement lists it."""

    suite: str
    name: str  # classname.name, or name alone
    status: Literal["passed", "failed", "skipped"]
    duration_s: float

    @property
    def label(self) -> str:
        """``suite: classname.name``: unique enough across suites, readable in a list."""
        return f"{self.suite}: {self.name}"


@dataclass(frozen=True, kw_only=True)
class RunIdentity:
    """Which run wrote a statement: the Actions run and attempt (``local-...`` outside
    Actions), its URL and commit, and the shard when the run was split."""

    run: str  # "<run id>.<attempt>"
    url: str | None = None
    commit: str | None = None
    shard: Shard | None = None


@dataclass(frozen=True, kw_only=True)
class SuiteFacts:
    """What a statement records of one suite."""

    name: str
    status: str
    exit_code: int | None
    duration_s: float
    totals: Mapping[str, Any]
    cases: Sequence[Case] = ()
    failures: Sequence[Mapping[str, Any]] = ()  # Failure.as_dict(), for annotations


@dataclass(frozen=True, kw_only=True)
class Configuration:
    """What the tests ran against besides the image: spec file and service images."""

    spec_name: str
    spec_sha256: str
    services: Mapping[str, str] = field(default_factory=dict)  # name -> image ID (digest)
    spec_uri: str | None = None


def verdict(totals: Mapping[str, Any], ok: bool) -> Verdict:
    """FAILED unless the run was green; WARNED when a green run skipped tests."""
    if not ok:
        return "FAILED"
    return "WARNED" if int(totals.get("skipped") or 0) else "PASSED"


def _resource(name: str, digest: str, uri: str | None = None) -> dict[str, Any]:
    algorithm, _, encoded = digest.partition(":")
    out: dict[str, Any] = {"name": name, "digest": {algorithm: encoded}}
    if uri:
        out["uri"] = uri
    return out


def statement(*, repository: str, digest: str, ok: bool, totals: Mapping[str, Any],
              suites: Sequence[SuiteFacts], config: Configuration, identity: RunIdentity,
              time: str, image_id: str | None = None,
              tested_is_shipped: bool | None = None) -> dict[str, Any]:
    """The in-toto Statement v1 of a test run of ``repository@digest``."""
    result = verdict(totals, ok)
    cases = [c for s in suites for c in s.cases]
    configuration = [_resource(config.spec_name, f"sha256:{config.spec_sha256}",
                               config.spec_uri)]
    configuration += [_resource(f"service:{name}", image)
                      for name, image in sorted(config.services.items())]
    predicate: dict[str, Any] = {
        "result": result,
        "configuration": configuration,
        "passedTests": [c.label for c in cases if c.status == "passed"],
        "warnedTests": [c.label for c in cases if c.status == "skipped"],
        "failedTests": [c.label for c in cases if c.status == "failed"],
        EXTENSION: {
            "version": 1,
            "time": time,
            "run": identity.run,
            "commit": identity.commit,
            "shard": ({"index": identity.shard.index, "total": identity.shard.total}
                      if identity.shard else None),
            "imageId": image_id,
            "testedIsShipped": tested_is_shipped,
            "totals": dict(totals),
            "suites": [{"name": s.name, "status": s.status, "exitCode": s.exit_code,
                        "durationSeconds": round(s.duration_s, 3), "totals": dict(s.totals),
                        "failures": [_short_failure(f) for f in s.failures],
                        "tests": [{"name": c.name, "status": c.status,
                                   "durationSeconds": round(c.duration_s, 6)}
                                  for c in s.cases]}
                       for s in suites],
        },
    }
    if identity.url:
        predicate["url"] = identity.url
    algorithm, _, encoded = digest.partition(":")
    return {"_type": STATEMENT_TYPE,
            "subject": [{"name": repository, "digest": {algorithm: encoded}}],
            "predicateType": TEST_RESULT, "predicate": predicate}


FAILURE_TEXT = 2000  # a failure's message and details in the statement: their heads


def _short_failure(failure: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(failure)
    for key in ("message", "details"):
        text = str(out.get(key) or "")
        out[key] = text if len(text) <= FAILURE_TEXT else text[:FAILURE_TEXT] + " [...]"
    return out


def encode(doc: Mapping[str, Any]) -> bytes:
    """Canonical JSON bytes of a statement."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def statement_manifest(*, statement_bytes: bytes, subject_digest: str, subject_size: int,
                       subject_media_type: str) -> bytes:
    """The OCI artifact manifest storing ``statement_bytes`` as its one layer."""
    doc = json.loads(statement_bytes)
    predicate = doc.get("predicate") or {}
    ext = predicate.get(EXTENSION) or {}
    annotations = {PREDICATE_ANNOTATION: str(doc.get("predicateType")),
                   RESULT_ANNOTATION: str(predicate.get("result"))}
    if ext.get("time"):
        annotations[CREATED_ANNOTATION] = str(ext["time"])
    if ext.get("run"):
        annotations[RUN_ANNOTATION] = str(ext["run"])
    if ext.get("shard"):
        annotations[SHARD_ANNOTATION] = f"{ext['shard']['index']}/{ext['shard']['total']}"
    layer = {"mediaType": IN_TOTO, "digest": digest_of(statement_bytes),
             "size": len(statement_bytes),
             "annotations": {PREDICATE_ANNOTATION: str(doc.get("predicateType"))}}
    return artifact_manifest(artifact_type=IN_TOTO, subject_digest=subject_digest,
                             subject_size=subject_size, subject_media_type=subject_media_type,
                             layers=[layer], annotations=annotations)


def statement_layer(manifest: bytes) -> tuple[str, int] | None:
    """(digest, size) of the statement layer of a test-result artifact, else None."""
    try:
        doc = json.loads(manifest)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("artifactType") != IN_TOTO:
        return None
    for layer in doc.get("layers") or []:
        if isinstance(layer, dict) and layer.get("mediaType") == IN_TOTO and \
                (layer.get("annotations") or {}).get(PREDICATE_ANNOTATION) == TEST_RESULT:
            return str(layer.get("digest")), int(layer.get("size") or 0)
    return None


@dataclass(frozen=True, kw_only=True)
class StoredResult:
    """A test-result statement read back for one digest."""

    artifact: str  # the artifact manifest's digest
    result: str
    run: str | None
    shard: Shard | None
    time: str | None
    totals: Mapping[str, Any]
    url: str | None
    commit: str | None
    statement: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON form for ``trace`` and ``verify``."""
        return {"artifact": self.artifact, "result": self.result, "run": self.run,
                "shard": str(self.shard) if self.shard else None, "time": self.time,
                "totals": dict(self.totals), "url": self.url, "commit": self.commit}


def read_statement(data: bytes, *, digest: str, artifact: str) -> StoredResult:
    """A stored statement, checked: an in-toto Statement v1 of the test-result predicate
    whose subject is ``digest``. ValueError says what is wrong."""
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise ValueError(f"statement {artifact} is not JSON") from e
    if not isinstance(doc, dict) or doc.get("_type") != STATEMENT_TYPE:
        raise ValueError(f"{artifact} is not an in-toto Statement v1")
    if doc.get("predicateType") != TEST_RESULT:
        raise ValueError(f"{artifact}: predicateType {doc.get('predicateType')!r} is not "
                         f"{TEST_RESULT}")
    algorithm, _, encoded = digest.partition(":")
    subjects = doc.get("subject") or []
    if not any(isinstance(s, dict) and (s.get("digest") or {}).get(algorithm) == encoded
               for s in subjects):
        raise ValueError(f"{artifact}: its subject is not {digest}")
    predicate = doc.get("predicate") or {}
    result = predicate.get("result")
    if result not in ("PASSED", "WARNED", "FAILED"):
        raise ValueError(f"{artifact}: result {result!r} is not PASSED, WARNED or FAILED")
    ext = predicate.get(EXTENSION) or {}
    shard = None
    if isinstance(ext.get("shard"), dict):
        try:
            shard = Shard(index=int(ext["shard"]["index"]), total=int(ext["shard"]["total"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{artifact}: bad shard {ext['shard']!r}") from e
    return StoredResult(artifact=artifact, result=str(result), run=ext.get("run"),
                        shard=shard, time=ext.get("time"), totals=ext.get("totals") or {},
                        url=predicate.get("url"), commit=ext.get("commit"), statement=doc)


@dataclass(frozen=True, kw_only=True)
class RunVerdict:
    """The results of one run (all its shards, each from its newest attempt) for a digest."""

    run: str
    passed: bool
    missing: tuple[int, ...]
    results: tuple[StoredResult, ...]
    problem: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"run": self.run, "passed": self.passed, "missing_shards": list(self.missing),
                "problem": self.problem, "results": [r.as_dict() for r in self.results]}


def split_run(run: str) -> tuple[str, int]:
    """``"<run id>.<attempt>"`` -> (run id, attempt); a run without an attempt is attempt 0."""
    head, dot, tail = run.rpartition(".")
    return (head, int(tail)) if dot and tail.isdigit() else (run, 0)


def by_run(results: Iterable[StoredResult]) -> list[RunVerdict]:
    """The stored results grouped per run, newest run first.

    Within a run each shard counts once, from its newest attempt (re-running one shard's
    job replaces that shard's result). A run passes when it has every shard it was split
    into and each passed (PASSED or WARNED).
    """
    groups: dict[str, dict[int, StoredResult]] = {}
    for r in results:
        run_id, attempt = split_run(r.run or f"artifact-{r.artifact}")
        index = r.shard.index if r.shard else 0
        kept = groups.setdefault(run_id, {}).get(index)
        if kept is None or (split_run(kept.run or "")[1], kept.time or "") < \
                (attempt, r.time or ""):
            groups[run_id][index] = r
    out = []
    for run_id, shards in groups.items():
        rs = [shards[i] for i in sorted(shards)]
        totals = {r.shard.total for r in rs if r.shard}
        problem = None
        missing: tuple[int, ...] = ()
        if len(totals) > 1 or (totals and 0 in shards):
            problem = "its results disagree on how many shards the run had"
        elif totals:
            total = totals.pop()
            missing = tuple(i for i in range(1, total + 1) if i not in shards)
            if missing:
                problem = f"shard(s) {', '.join(map(str, missing))} of {total} missing"
        failed = [r for r in rs if r.result not in PASSING]
        if failed and problem is None:
            where = [str(r.shard) for r in failed if r.shard]
            problem = "failing results" + (f" in shard(s) {', '.join(where)}" if where else "")
        out.append(RunVerdict(run=run_id, passed=problem is None, missing=missing,
                              results=tuple(rs), problem=problem))
    out.sort(key=lambda v: max((r.time or "") for r in v.results), reverse=True)
    return out


def run_from(results: Sequence[StoredResult], *, repository: str, digest: str,
             digest_kind: str | None = None) -> RunResult:
    """One run's shards gathered into one result: each suite once, as if it had run whole
    (totals summed over the shards, failures of every shard, the worst status, the longest
    shard's duration), for one report of the whole run."""
    parts: dict[str, list[Mapping[str, Any]]] = {}
    image_ids, shipped = set(), []
    for r in sorted(results, key=lambda r: r.shard.index if r.shard else 0):
        ext = (r.statement.get("predicate") or {}).get(EXTENSION) or {}
        image_ids.add(ext.get("imageId"))
        shipped.append(ext.get("testedIsShipped"))
        for s in ext.get("suites") or []:
            parts.setdefault(str(s.get("name")), []).append(s)
    suites = tuple(_suite(name, shards) for name, shards in parts.items())
    image_id = next(iter(image_ids)) if len(image_ids) == 1 else ""
    return RunResult(image_id=str(image_id or ""), repository=repository, digest=digest,
                     digest_kind=digest_kind, suites=suites,
                     tested_is_shipped=all(x is True for x in shipped) if shipped else None)


_SEVERITY = (SuiteStatus.ERROR, SuiteStatus.TIMED_OUT, SuiteStatus.FAILED, SuiteStatus.PASSED)


def _suite(name: str, shards: Sequence[Mapping[str, Any]]) -> SuiteResult:
    totals = Totals()
    failures: list[Failure] = []
    statuses = set()
    for s in shards:
        t = s.get("totals") or {}
        totals = totals + Totals(**{k: t.get(k, 0) for k in _TOTALS})
        failures += [_failure(f) for f in s.get("failures") or [] if isinstance(f, dict)]
        statuses.add(SuiteStatus(str(s.get("status"))))
    status = next(st for st in _SEVERITY if st in statuses or st is SuiteStatus.PASSED)
    codes = [s.get("exitCode") for s in shards]
    return SuiteResult(name=name, status=status,
                       exit_code=next((c for c in codes if c), codes[0] if codes else None),
                       duration_s=max(float(s.get("durationSeconds") or 0.0) for s in shards),
                       results=TestResults(totals=totals, failures=tuple(failures)))


def _failure(f: Mapping[str, Any]) -> Failure:
    line = f.get("line")
    return Failure(suite=str(f.get("suite") or ""), classname=str(f.get("classname") or ""),
                   name=str(f.get("name") or ""),
                   kind="error" if f.get("kind") == "error" else "failure",
                   message=str(f.get("message") or ""), details=str(f.get("details") or ""),
                   file=str(f["file"]) if f.get("file") else None,
                   line=line if isinstance(line, int) else None)


_TOTALS = ("tests", "passed", "failed", "errors", "skipped", "duration_s")
