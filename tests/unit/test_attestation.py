"""The results statement and the verdict over stored results (pure): shards, re-runs,
missing and failing shards; the referrers list's merge and fallback tag."""

from __future__ import annotations

import json

import pytest

from immu_action.core.attestation import (
    Case,
    Configuration,
    RunIdentity,
    StoredResult,
    SuiteFacts,
    by_run,
    encode,
    read_statement,
    statement,
    statement_layer,
    statement_manifest,
    verdict,
)
from immu_action.core.referrers import Referrer, fallback_tag, merged, parse_list, render_list
from immu_action.core.sharding import Shard

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


def stored(run: str, shard: str | None, result: str = "PASSED",
           time: str = "2026-12-03T10:00:00") -> StoredResult:
    index, total = (int(x) for x in shard.split("/")) if shard else (0, 0)
    return StoredResult(artifact=f"a-{run}-{shard}", result=result, run=run,
                        shard=Shard(index=index, total=total) if shard else None, time=time,
                        totals={}, url=None, commit=None, statement={})


def doc(ok: bool = True, skipped: int = 0, shard: Shard | None = None) -> dict:
    cases = (Case(suite="unit", name="t.a", status="passed", duration_s=0.5),
             Case(suite="unit", name="t.b", status="failed" if not ok else "skipped",
                  duration_s=0.25))
    return statement(repository="r.example/app", digest=DIGEST, ok=ok,
                     totals={"tests": 2, "skipped": skipped},
                     suites=[SuiteFacts(name="unit", status="passed", exit_code=0,
                                        duration_s=1.0, totals={}, cases=cases)],
                     config=Configuration(spec_name="immu.yml", spec_sha256="00" * 32,
                                          services={"db": OTHER}),
                     identity=RunIdentity(run="77.1", url="https://x/run/77", shard=shard),
                     time="2026-12-03T10:00:00")


def test_the_statement_follows_in_toto_and_the_test_result_predicate() -> None:
    d = doc(ok=False, shard=Shard(index=2, total=3))
    assert d["_type"] == "https://in-toto.io/Statement/v1"
    assert d["subject"] == [{"name": "r.example/app", "digest": {"sha256": "ab" * 32}}]
    p = d["predicate"]
    assert p["result"] == "FAILED" and p["url"] == "https://x/run/77"
    assert p["passedTests"] == ["unit: t.a"] and p["failedTests"] == ["unit: t.b"]
    assert p["configuration"][1] == {"name": "service:db", "digest": {"sha256": "cd" * 32}}
    assert p["immuAction"]["shard"] == {"index": 2, "total": 3}
    manifest = statement_manifest(statement_bytes=encode(d), subject_digest=DIGEST,
                                  subject_size=10, subject_media_type="m")
    m = json.loads(manifest)
    assert m["annotations"]["io.immu.shard"] == "2/3"
    assert m["annotations"]["io.immu.result"] == "FAILED"
    assert statement_layer(manifest) is not None
    back = read_statement(encode(d), digest=DIGEST, artifact="x")
    assert back.shard == Shard(index=2, total=3) and back.run == "77.1"


def test_a_statement_about_another_digest_is_refused() -> None:
    with pytest.raises(ValueError, match="subject is not"):
        read_statement(encode(doc()), digest=OTHER, artifact="x")


@pytest.mark.parametrize(("totals", "ok", "expected"), [
    ({"skipped": 0}, True, "PASSED"), ({"skipped": 2}, True, "WARNED"),
    ({"skipped": 0}, False, "FAILED")])
def test_verdict(totals: dict, ok: bool, expected: str) -> None:
    assert verdict(totals, ok) == expected


def test_a_sharded_run_passes_only_with_every_shard() -> None:
    (v,) = by_run([stored("5.1", "1/3"), stored("5.1", "3/3")])
    assert not v.passed and v.missing == (2,) and v.problem == "shard(s) 2 of 3 missing"
    (v,) = by_run([stored("5.1", "1/3"), stored("5.1", "2/3"), stored("5.1", "3/3")])
    assert v.passed and v.run == "5"


def test_a_failing_shard_fails_the_run_until_its_job_is_re_run() -> None:
    results = [stored("5.1", "1/2"), stored("5.1", "2/2", "FAILED")]
    (v,) = by_run(results)
    assert not v.passed and v.problem == "failing results in shard(s) 2/2"
    # Re-running the failed job is attempt 2 of the same run: its result replaces shard 2's.
    (v,) = by_run([*results, stored("5.2", "2/2", time="2026-12-03T11:00:00")])
    assert v.passed and [r.run for r in v.results] == ["5.1", "5.2"]


def test_shards_that_disagree_on_the_count_never_pass() -> None:
    (v,) = by_run([stored("5.1", "1/2"), stored("5.1", "2/3"), stored("5.1", "3/3")])
    assert not v.passed and "disagree" in str(v.problem)


def test_runs_are_kept_apart_newest_first() -> None:
    verdicts = by_run([stored("5.1", None, "FAILED", time="2026-12-01"),
                       stored("6.1", None, time="2026-12-02")])
    assert [(v.run, v.passed) for v in verdicts] == [("6", True), ("5", False)]


def test_the_fallback_tag_and_a_merge_without_duplicates() -> None:
    assert fallback_tag(DIGEST) == "sha256-" + "ab" * 32
    a, b = Referrer(digest=DIGEST, size=1), Referrer(digest=OTHER, size=2, artifact_type="t")
    assert merged([a], [a]) is None
    listed = merged([a], [b, a])
    assert listed == [a, b]
    assert parse_list(render_list(listed)) == [a, b]
