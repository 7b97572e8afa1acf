"""The audit trail's tag layout on the real registry: one tag per record, nothing read
before writing one, records of look-alike tags kept apart, tags/list paginated or not."""

from __future__ import annotations

import threading
import uuid

import pytest

from immu_action.adapters.registry.audit import history, record_names
from immu_action.adapters.registry.history import trace
from immu_action.adapters.registry.promotion import Provenance, Registries, promote
from immu_action.adapters.registry.referrers import list_referrers
from immu_action.core.audit import is_record_name, record_prefix
from immu_action.core.referrers import fallback_tag
from immu_action.errors import RegistryError
from tests.support import registry as support
from tests.support.faultproxy import FaultProxy, Rule
from tests.support.registry import Pushed, Registry

registry, pushed_images = support.registry, support.pushed_images
pytestmark = [pytest.mark.registry, pytest.mark.docker]


def pool(registry: Registry) -> Registries:
    return Registries(clients={registry.host: registry.client()})


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_an_audited_promotion_reads_nothing_of_the_trail(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    image, repo = pushed_images[0], fresh("immu-test/aud")
    promote(image.by_digest, [f"{repo}:seed"], registries=pool(registry))  # empty blob there
    with FaultProxy(registry.port) as proxy:
        client = registry.client()
        client.transport.host = proxy.host
        result = promote(f"{proxy.host}/{repo}@{image.digest}", ["v1"],
                         registries=Registries(clients={proxy.host: client}))
        sent = [(s.method, s.path.rsplit("/", 1)[-1]) for s in proxy.seen if s.status != 401]
    record = result.tags[0].record
    assert record is not None
    # GET + HEAD of the tag, then the tag's PUT and the record's PUT: no record is read.
    assert sorted(sent[:2]) == [("GET", image.digest), ("HEAD", "v1")]
    assert sorted(m for m, _ in sent[2:4]) == ["PUT", "PUT"]
    names = {name for _, name in sent[2:4]}
    assert "v1" in names and all(n == "v1" or is_record_name(n) for n in names)
    # Then the digest's referrers list (registry 2.8 has no referrers API) gets the record:
    # read, write, read again to check no concurrent writer dropped it.
    listing = fallback_tag(image.digest)
    assert sent[4:] == [("GET", listing), ("PUT", listing), ("GET", listing)]
    assert [d for d, _ in history(registry.client(), repo, "v1")] == [record]
    listed = list_referrers(registry.client(), repo, image.digest)
    assert len(listed) == 2 and listed[1].digest == record  # the seed's record, then v1's
    assert listed[1].annotations["io.immu.tag"] == "v1"


def test_concurrent_promotions_of_one_tag_both_keep_their_record(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    repo = fresh("immu-test/race")
    target = f"{registry.host}/{repo}:latest"
    promote(pushed_images[0].by_digest, [f"{repo}:seed"], registries=pool(registry))
    start, errors = threading.Barrier(2), []

    def run(image: Pushed, commit: str) -> None:
        try:
            start.wait()
            promote(image.by_digest, [target], registries=pool(registry),
                    provenance=Provenance(commit=commit))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(pushed_images[i], str(i) * 40))
               for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    records = trace(target, registries=pool(registry)).records
    assert sorted(str(r.commit) for _, r in records) == ["1" * 40, "2" * 40]


def test_records_of_a_tag_sharing_the_prefix_stay_apart(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    repo = fresh("immu-test/prefix")
    long_tag = "release-" + "9" * 110  # hashed record names
    for tag, image in (("v1", 0), ("v1.2", 1), ("V1", 2), (long_tag, 0)):
        promote(pushed_images[image].by_digest, [f"{repo}:{tag}"], registries=pool(registry))
    assert record_prefix("v1.2").startswith(record_prefix("v1"))
    for tag, image in (("v1", 0), ("v1.2", 1), ("V1", 2), (long_tag, 0)):
        traced = trace(f"{registry.host}/{repo}:{tag}", registries=pool(registry))
        assert [(r.tag, r.digest) for _, r in traced.records] \
            == [(tag, pushed_images[image].digest)]
        assert traced.in_sync


def test_history_follows_tags_list_pagination(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    repo = fresh("immu-test/pages")
    target = f"{registry.host}/{repo}:latest"
    for i in range(3):
        promote(pushed_images[i].by_digest, [target, f"{repo}:a{i}", f"{repo}:z{i}"],
                registries=pool(registry), mutable=["latest"])
    unpaged = record_names(registry.client(), repo, "latest")
    with FaultProxy(registry.port, tag_pages=2) as proxy:
        client = registry.client()
        client.transport.host = proxy.host
        assert record_names(client, repo, "latest") == unpaged
        pages = [s.path for s in proxy.seen if "/tags/list" in s.path and s.status == 200]
        found = history(client, repo, "latest")
    assert len(unpaged) == 3 and len(pages) >= 2  # followed Link: rel="next"
    assert "last=immu-audit-latest" in pages[0]  # listing starts at the record prefix
    assert [r.digest for _, r in found] == [pushed_images[i].digest for i in (2, 1, 0)]


def test_a_refused_record_is_reported_and_written_by_the_next_run(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    image, repo = pushed_images[0], fresh("immu-test/refused")
    promote(image.by_digest, [f"{repo}:seed"], registries=pool(registry))
    with FaultProxy(registry.port) as proxy:
        proxy.add(Rule(method="PUT", path=r"/manifests/immu-audit-", status=400))
        client = registry.client()
        client.transport.host = proxy.host
        with pytest.raises(RegistryError, match=r"now points at sha256:\w+, but its audit "
                                                r"record was not written.*INJECTED"):
            promote(f"{proxy.host}/{repo}@{image.digest}", ["v9"],
                    registries=Registries(clients={proxy.host: client}))
    assert registry.client().head_manifest(repo, "v9") == image.digest
    assert trace(f"{registry.host}/{repo}:v9", registries=pool(registry)).records == ()

    again = promote(f"{registry.host}/{repo}@{image.digest}", ["v9"], registries=pool(registry),
                    provenance=Provenance(commit="e" * 40))
    assert not again.tags[0].written and again.tags[0].record is not None
    traced = trace(f"{registry.host}/{repo}:v9", registries=pool(registry))
    assert traced.in_sync and [r.commit for _, r in traced.records] == ["e" * 40]

    with FaultProxy(registry.port) as proxy:  # a third run: nothing to write at all
        client = registry.client()
        client.transport.host = proxy.host
        third = promote(f"{proxy.host}/{repo}@{image.digest}", ["v9"],
                        registries=Registries(clients={proxy.host: client}))
        puts = proxy.count("PUT")
    assert third.tags[0].record is None and puts == 0
