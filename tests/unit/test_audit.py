"""Audit record encoding and the record manifest (pure)."""

from __future__ import annotations

import datetime
import hashlib
import json

import pytest

from immu_action.core.audit import (
    AUDIT_MEDIA_TYPE,
    AuditRecord,
    decode_record,
    encode_record,
    is_record_name,
    record_from_manifest,
    record_manifest,
    record_name,
    record_stamp,
    rollback_candidates,
)
from immu_action.core.referrers import EMPTY_BLOB, EMPTY_DIGEST
from immu_action.core.tags import tag_problem

D = ["sha256:" + c * 64 for c in "abcdef"]


def record(**kw: object) -> AuditRecord:
    base: dict[str, object] = dict(action="promote", repository="team/app", tag="latest",
                                   digest=D[1], previous_digest=D[0],
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
    r = record(tests={"tests": 1})
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


WHEN = datetime.datetime(2026, 11, 26, 3, 4, 5, 60708, tzinfo=datetime.timezone.utc)


def test_record_names_are_valid_unique_tags_that_sort_by_time() -> None:
    name = record_name("latest", WHEN, "a1b2c3")
    assert name == "immu-audit-latest.20261126T030405060708Z-a1b2c3"
    assert tag_problem(name) is None and is_record_name(name)
    assert record_stamp(name, "latest") == "20261126T030405060708Z"
    later = record_name("latest", WHEN + datetime.timedelta(microseconds=1))
    assert later > name and record_name("latest", WHEN) != record_name("latest", WHEN)
    # Another zone is the same instant: names compare in UTC.
    east = WHEN.astimezone(datetime.timezone(datetime.timedelta(hours=9)))
    assert record_name("latest", east, "a1b2c3") == name


def test_a_longer_tag_sharing_the_prefix_is_not_taken_for_the_tag() -> None:
    of_v1_2 = record_name("v1.2", WHEN)
    assert of_v1_2.startswith("immu-audit-v1.")  # v1's listing prefix...
    assert record_stamp(of_v1_2, "v1") is None  # ...but not v1's record
    assert record_stamp(of_v1_2, "v1.2") is not None
    assert record_stamp("immu-audit-v1", "v1") is None and not is_record_name("v1")


@pytest.mark.parametrize("tag", ["x" * 128, "release-" + "9" * 120, "y" * 88])
def test_long_tags_get_hashed_record_names_that_stay_valid(tag: str) -> None:
    name = record_name(tag, WHEN)
    assert tag_problem(name) is None and len(name) <= 128
    assert name.startswith("immu-audit-h-") and record_stamp(name, tag) is not None
    assert record_stamp(name, tag[:-1] + "z") is None


def test_the_longest_tag_kept_readable_fits() -> None:
    tag = "r" * 87
    name = record_name(tag, WHEN)
    assert len(name) == 128 and tag in name and tag_problem(name) is None


def test_rollback_candidates_walk_back_without_toggling() -> None:
    a, b, c = D[0], D[1], D[2]
    promoted = [record(digest=c, previous_digest=b), record(digest=b, previous_digest=a),
                record(digest=a, previous_digest=None)]
    assert rollback_candidates(promoted, current=c) == [b, a]
    after = [record(action="rollback", digest=b, previous_digest=c), *promoted]
    assert rollback_candidates(after, current=b) == [a]  # c was rolled back: not offered
