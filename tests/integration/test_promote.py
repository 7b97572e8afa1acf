"""Promotion, immutability, rollback and trace against the real distribution registry."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from immu_action.adapters.registry.history import rollback, trace
from immu_action.adapters.registry.promotion import Provenance, Registries, promote
from immu_action.adapters.registry.verify import verify_pushed
from immu_action.core.manifests import DOCKER_LIST, DOCKER_MANIFEST, digest_of
from immu_action.errors import BadInput, PolicyRefused, RegistryError
from tests.support import registry as support
from tests.support.faultproxy import FaultProxy, Rule
from tests.support.registry import Pushed, Registry

# Fixtures (also available through pytest_plugins once tests/conftest.py lists the module).
registry, registry2, pushed_images = support.registry, support.registry2, support.pushed_images

pytestmark = [pytest.mark.registry, pytest.mark.docker]


def pool(*instances: Registry) -> Registries:
    return Registries(clients={r.host: r.client() for r in instances})


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_same_repo_promotion_costs_get_head_put_and_uploads_no_image_blob(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    image = pushed_images[0]
    with FaultProxy(registry.port) as proxy:
        src = image.by_digest.replace(registry.host, proxy.host)
        client = registry.client()
        client.transport.host = proxy.host  # same credentials, through the counting proxy
        before = registry.log_lines()
        result = promote(src, [fresh("v")], registries=Registries(clients={proxy.host: client}),
                         audit=False)
        after_auth = [(s.method, s.path.split("/")[-2]) for s in proxy.seen if s.status != 401]
    assert result.tags[0].written and result.digest == image.digest
    # GET by digest and HEAD of the tag run concurrently; the PUT comes last.
    assert sorted(after_auth[:2]) == [("GET", "manifests"), ("HEAD", "manifests")]
    assert after_auth[2:] == [("PUT", "manifests")]
    assert registry.blob_uploads_since(before) == []


def test_audit_record_is_one_manifest_referring_to_the_image(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    image, repo = pushed_images[0], fresh("immu-test/audited")
    promote(image.by_digest, [f"{repo}:first"], registries=pool(registry))
    before = registry.log_lines()
    result = promote(f"{registry.host}/{repo}@{image.digest}", ["second"],
                     registries=pool(registry),
                     provenance=Provenance(commit="a" * 40, run_url="https://ci/run/1",
                                           tests={"tests": 3, "passed": 3}))
    assert registry.blob_uploads_since(before) == []  # the empty config went up once
    record_digest = result.tags[0].record
    assert record_digest is not None
    record_manifest = registry.client().get_manifest(repo, record_digest)
    doc = json.loads(record_manifest.data)
    assert doc["subject"]["digest"] == image.digest
    assert doc["artifactType"] == "application/vnd.immu.promotion.v1+json"
    assert json.loads(doc["annotations"]["io.immu.record"])["run_url"] == "https://ci/run/1"


def _blob_count(registry: Registry, image: Pushed) -> int:
    doc = json.loads(registry.client().get_manifest("immu-test/app", image.digest).data)
    return 1 + len(doc["layers"])


def test_cross_repo_promotion_mounts_every_blob(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    image, repo = pushed_images[1], fresh("immu-test/mounted")
    before = registry.log_lines()
    blobs = _blob_count(registry, image)
    result = promote(image.by_digest, [f"{repo}:v1"], registries=pool(registry), audit=False)
    assert result.tags[0].copy["blobs_mounted"] == blobs
    assert result.tags[0].copy["blobs_streamed"] == 0
    uploads = registry.blob_uploads_since(before)
    assert len(uploads) == blobs and all("mount=sha256:" in u and '" 201 ' in u for u in uploads)
    assert registry.client().head_manifest(repo, "v1") == image.digest


def test_cross_registry_promotion_streams_blobs(
        registry: Registry, registry2: Registry, pushed_images: list[Pushed]) -> None:
    image = pushed_images[2]
    target = f"{registry2.host}/immu-test/copied:v1"
    result = promote(image.by_digest, [target], registries=pool(registry, registry2))
    assert result.tags[0].copy["blobs_streamed"] == _blob_count(registry, image)
    assert registry2.client().head_manifest("immu-test/copied", "v1") == image.digest
    again = promote(image.by_digest, [f"{registry2.host}/immu-test/copied:v2"],
                    registries=pool(registry, registry2), audit=False)
    assert again.tags[0].copy["blobs_streamed"] == 0  # never re-uploads what is there
    assert again.tags[0].copy["blobs_present"] == _blob_count(registry, image)


def _push_index(registry: Registry, images: list[Pushed]) -> str:
    client = registry.client()
    children = []
    for arch, image in zip(("amd64", "arm64"), images, strict=False):
        m = client.get_manifest("immu-test/app", image.digest)
        children.append({"mediaType": DOCKER_MANIFEST, "digest": m.digest, "size": len(m.data),
                         "platform": {"architecture": arch, "os": "linux"}})
    index = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST,
                        "manifests": children}, indent=3).encode()  # unusual bytes on purpose
    return client.put_manifest("immu-test/app", fresh("index"), index, DOCKER_LIST)


def test_index_is_copied_as_is_with_its_digest(
        registry: Registry, registry2: Registry, pushed_images: list[Pushed]) -> None:
    digest = _push_index(registry, pushed_images[:2])
    source = f"{registry.host}/immu-test/app@{digest}"
    repo = fresh("immu-test/idx")
    targets = ["multi", f"{repo}:multi", f"{registry2.host}/{repo}:multi"]
    result = promote(source, targets, registries=pool(registry, registry2), audit=False)
    assert [t.written for t in result.tags] == [True, True, True]
    for client, name in ((registry.client(), "immu-test/app"), (registry.client(), repo),
                         (registry2.client(), repo)):
        got = client.get_manifest(name, "multi")
        assert got.digest == digest and digest_of(got.data) == digest
        for image in pushed_images[:2]:
            assert client.head_manifest(name, image.digest) == image.digest


def test_immutable_tag_refuses_another_digest_and_accepts_the_same(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    first, second = pushed_images[0], pushed_images[1]
    tag = fresh("1.0")
    promote(first.by_digest, [tag], registries=pool(registry))
    again = promote(first.by_digest, [tag], registries=pool(registry))
    assert again.tags[0].written is False
    with pytest.raises(PolicyRefused) as refused:
        promote(second.by_digest, [f"ok-{tag}", tag], registries=pool(registry))
    assert tag in str(refused.value) and first.digest in str(refused.value)
    assert second.digest in str(refused.value) and refused.value.exit_code == 3
    client = registry.client()
    assert client.head_manifest("immu-test/app", tag) == first.digest
    assert client.head_manifest("immu-test/app", f"ok-{tag}") is None  # refused before writes
    moved = promote(second.by_digest, [tag], mutable=[tag], registries=pool(registry))
    assert moved.tags[0].previous_digest == first.digest


def test_rollback_and_trace_walk_the_audit_chain(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    repo = fresh("immu-test/rb")
    target = f"{registry.host}/{repo}:latest"
    digests = []
    for i, image in enumerate(pushed_images):
        promote(image.by_digest, [target], registries=pool(registry),
                provenance=Provenance(commit=f"{i}" * 40, run_url=f"https://ci/{i}",
                                      tests={"tests": 10 + i, "passed": 10 + i}))
        digests.append(image.digest)
    traced = trace(target, registries=pool(registry)).as_dict()
    assert traced["digest"] == digests[2] and traced["commit"] == "2" * 40
    assert traced["tests"] == {"tests": 12, "passed": 12} and traced["in_sync"]
    assert traced["earlier_digests"] == [digests[1], digests[0]]

    back = rollback(target, registries=pool(registry),
                    provenance=Provenance(commit="r" * 40))
    assert back.digest == digests[1] and back.tags[0].previous_digest == digests[2]
    after = trace(target, registries=pool(registry)).as_dict()
    assert after["commit"] == "1" * 40 and after["run_url"] == "https://ci/1"
    back2 = rollback(target, registries=pool(registry))
    assert back2.digest == digests[0]  # not back to digests[2]: that one was rolled back
    with pytest.raises(BadInput, match="only 0 earlier"):
        rollback(target, registries=pool(registry))
    forward = rollback(target, to=digests[2], registries=pool(registry))
    assert forward.digest == digests[2]
    history = trace(target, registries=pool(registry)).records
    assert [r.action for _, r in history] == ["rollback", "rollback", "rollback",
                                             "promote", "promote", "promote"]
    assert history[3][1].commit == "2" * 40
    # After the rollbacks the tag is back on digests[2]: its provenance is its promotion.
    assert trace(target, registries=pool(registry)).as_dict()["commit"] == "2" * 40
    with pytest.raises(BadInput, match="not an earlier promoted digest"):
        rollback(target, to="sha256:" + "f" * 64, registries=pool(registry))


def test_rollback_of_an_immutable_tag_is_refused(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    tag = fresh("2.0")
    promote(pushed_images[0].by_digest, [tag], registries=pool(registry))
    with pytest.raises(PolicyRefused, match="immutable"):
        rollback(f"{registry.host}/immu-test/app:{tag}", registries=pool(registry))


def test_trace_of_a_tag_moved_outside_immu_says_so(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    tag = fresh("moved")
    promote(pushed_images[0].by_digest, [tag], registries=pool(registry))
    client = registry.client()
    other = client.get_manifest("immu-test/app", pushed_images[1].digest)
    client.put_manifest("immu-test/app", tag, other.data, other.media_type)
    traced = trace(f"{registry.host}/immu-test/app:{tag}", registries=pool(registry))
    assert traced.digest == pushed_images[1].digest and not traced.in_sync
    assert traced.as_dict()["commit"] is None


def test_verify_pushed_proves_tested_is_shipped(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    image = pushed_images[0]
    got = verify_pushed(image.repository, image.tag, image.image_id, client=registry.client())
    assert got == (image.digest, image.image_id, DOCKER_MANIFEST)
    with pytest.raises(RegistryError, match="not the tested image"):
        verify_pushed(image.repository, image.tag, pushed_images[1].image_id,
                      client=registry.client())


def test_verify_pushed_finds_the_tested_child_of_an_index(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    digest = _push_index(registry, pushed_images[:2])
    client = registry.client()
    tag = fresh("pushed-index")
    index = client.get_manifest("immu-test/app", digest)
    client.put_manifest("immu-test/app", tag, index.data, index.media_type)
    got = verify_pushed(f"{registry.host}/immu-test/app", tag, pushed_images[1].image_id,
                        client=client)
    assert got.manifest_digest == digest and got.media_type == DOCKER_LIST
    with pytest.raises(RegistryError, match="not the tested image"):
        verify_pushed(f"{registry.host}/immu-test/app", tag, pushed_images[2].image_id,
                      client=client)


def test_referrers_are_carried_once_the_content_they_share_blobs_with_is_there(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    """A promotion to another repository carries the digest's referrers (results, records),
    but only after the image's content and the records' empty config are there: a
    referrer's PUT while distribution 2.8 links a blob it shares was answered DIGEST_INVALID
    (seen once in CI). The content's mounts are made slow here; the carry waits for them."""
    image = pushed_images[0]
    first, second = fresh("immu-test/carry-a"), fresh("immu-test/carry-b")
    promote(image.by_digest, [f"{first}:seed"], registries=pool(registry))  # a record there
    with FaultProxy(registry.port) as proxy:
        slow = proxy.add(Rule(method="POST", path=rf"/v2/{second}/blobs/uploads/\?.*mount=",
                              delay_s=0.5, times=100))
        client = registry.client()
        client.transport.host = proxy.host  # same credentials, through the proxy
        result = promote(f"{proxy.host}/{first}@{image.digest}", [f"{proxy.host}/{second}:v1"],
                         registries=Registries(clients={proxy.host: client}))
        arrivals = list(proxy.arrivals)
    assert result.tags[0].written and slow.hits
    carried = [t for t, _, path in arrivals if f"/v2/{first}/" in path
               and ("/referrers/" in path or "/manifests/sha256-" in path)]
    assert carried, arrivals
    content = [t for t, method, path in arrivals if method == "POST"
               and re.search(slow.path, path) and t < min(carried)]
    assert content, "the referrers were read before any of the content was mounted"
    assert min(carried) >= max(content) + 0.4  # after the slow mounts ended
    def listed(repo: str) -> set[str]:
        index = registry.client().get_manifest(repo, f"sha256-{image.digest[7:]}")
        return {m["digest"] for m in json.loads(index.data)["manifests"]}

    assert listed(first) < listed(second) and len(listed(second) - listed(first)) == 1


def test_many_tags_in_another_repository_copy_the_content_once(
        registry: Registry, pushed_images: list[Pushed]) -> None:
    # Each tag mounting the same blobs at once made distribution 2.8 answer a manifest PUT
    # DIGEST_INVALID now and then (it rewrites a blob's link file on every mount).
    for round_ in range(4):
        image = pushed_images[round_ % len(pushed_images)]
        repo = fresh("immu-test/multi")
        targets = [f"{repo}:t{i}" for i in range(4)]
        result = promote(image.by_digest, targets, registries=pool(registry))
        assert [t.written for t in result.tags] == [True] * 4
        assert sorted(t.copy["blobs_mounted"] for t in result.tags) \
            == [0, 0, 0, _blob_count(registry, image)]
        assert [t.copy["manifests_put"] for t in result.tags] == [1] * 4
        for target in targets:
            traced = trace(f"{registry.host}/{target}", registries=pool(registry))
            assert traced.digest == image.digest and len(traced.records) == 1
