"""Audit record encoding and the record manifest (pure)."""

from __future__ import annotations

import hashlib
import json

import pytest

from immu_action.core.audit import (
    AUDIT_MEDIA_TYPE,
    EMPTY_BLOB,
    EMPTY_DIGEST,
    AuditRecord,
    audit_tag,
    decode_record,
    encode_record,
    record_from_manifest,
    record_manifest,
)
from immu_action.core.tags import tag_problem
from immu_action.promotion import rollback_candidates

D = ["sha256:" + c * 64 for c in "abcdef"]


def record(**kw: object) -> AuditRecord:
    base: dict[str, object] = dict(action="promote", repository="team/app", tag="latest",
                                   digest=D[1], previous_digest=D[0], previous_record=None,
                                   time="2026-11-26T00:00:00+00:00")
    return AuditRecord(**{**base, **kw})  # type: ignore[arg-type]


def test_record_round_trips_and_encoding_is_canonical() -> None:
    r = record(commit="c" * 40, run_url="https://ci/1", tests={"tests": 3, "passed": 3})
    data = encode_record(r)
    assert decode_record(data) == r
    assert data == encode_record(decode_record(data))
    assert json.loads(data)["schema"] == AUDIT_MEDIA_TYPE and b" " not in data


def test_unknown_fields_from_newer_writers_are_ignored() -> None:
    doc = json.loads(encode_record(record()))
    doc["signature"] = "future"
    assert decode_record(json.dumps(doc).encode()) == record()


@pytest.mark.parametrize("data", [b'{"schema":"other"}', b"[]",
                                  b'{"schema":"application/vnd.immu.promotion.v1+json",'
                                  b'"action":"delete"}'])
def test_foreign_blobs_are_rejected(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_record(data)


def test_record_manifest_is_an_artifact_referring_to_the_image() -> None:
    r = record(previous_record=D[5], tests={"tests": 1})
    data = record_manifest(subject_digest=D[1], subject_size=500,
                           subject_media_type="application/x", record=r)
    doc = json.loads(data)
    assert doc["artifactType"] == AUDIT_MEDIA_TYPE and doc["layers"] == []
    assert doc["config"] == {"mediaType": "application/vnd.oci.empty.v1+json",
                             "digest": EMPTY_DIGEST, "size": 2}
    assert "sha256:" + hashlib.sha256(EMPTY_BLOB).hexdigest() == EMPTY_DIGEST
    assert doc["subject"] == {"mediaType": "application/x", "digest": D[1], "size": 500}
    assert record_from_manifest(data) == r
    for foreign in (b'{"config":{}}', b'{"artifactType":"%s"}' % AUDIT_MEDIA_TYPE.encode()):
        with pytest.raises(ValueError):
            record_from_manifest(foreign)


def test_audit_tag_is_always_a_valid_tag() -> None:
    assert audit_tag("latest") == "immu-audit-latest"
    long = audit_tag("x" * 128)
    assert tag_problem(long) is None and long.startswith("immu-audit-h-")
    assert audit_tag("x" * 128) != audit_tag("x" * 127 + "y")


def test_rollback_candidates_walk_back_without_toggling() -> None:
    a, b, c = D[0], D[1], D[2]
    promoted = [record(digest=c, previous_digest=b), record(digest=b, previous_digest=a),
                record(digest=a, previous_digest=None)]
    assert rollback_candidates(promoted, current=c) == [b, a]
    after = [record(action="rollback", digest=b, previous_digest=c), *promoted]
    assert rollback_candidates(after, current=b) == [a]  # c was rolled back: not offered
