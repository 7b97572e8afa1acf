"""Test results travel with the image: after `immu run --push` the registry holds an in-toto
statement attached to the tested digest, found the way any OCI client finds it (plain HTTP
following the distribution spec, not our client); `immu verify` gates on it; writers of the
referrers list racing each other lose nothing."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest
import requests

from immu_action.adapters.registry.auth import Credentials
from immu_action.adapters.registry.client import RegistryClient
from immu_action.adapters.registry.referrers import attach, list_referrers
from immu_action.cli import main
from immu_action.core.attestation import IN_TOTO, TEST_RESULT
from immu_action.core.manifests import OCI_INDEX, OCI_MANIFEST, digest_of
from immu_action.core.referrers import artifact_manifest, fallback_tag
from immu_action.errors import RegistryError
from tests.integration.test_pipeline_docker import assert_clean, write_project
from tests.support.faultproxy import FaultProxy, Rule
from tests.support.registry import (  # noqa: F401
    PASSWORD,
    USER,
    Pushed,
    Registry,
    pushed_images,
    registry,
    registry2,
    registry_env,
)

pytestmark = [pytest.mark.docker, pytest.mark.registry]
ACCEPT = f"{OCI_INDEX}, {OCI_MANIFEST}"


def spec_text(registry: Registry, repo: str, command: str) -> str:  # noqa: F811
    return f"""\
    version: 1
    image: {{repository: {registry.host}/{repo}}}
    tests:
      unit: {{command: [sh, -c, "{command}"]}}
    """


def pushed_run(tmp: Path, registry: Registry, repo: str, command: str,  # noqa: F811
               capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    spec = write_project(tmp, "immu-base/busybox:1", spec_text(registry, repo, command))
    code = main(["run", "-f", str(spec), "--push", "--results-dir", str(tmp / "results"),
                 "--json"])
    out, err = capsys.readouterr()
    assert out.strip(), err
    return code, json.loads(out)


class ThirdParty:
    """An OCI client written from the distribution spec alone: basic auth, plain requests."""

    def __init__(self, registry: Registry, repo: str) -> None:  # noqa: F811
        self.base = f"http://{registry.host}/v2/{repo}"
        self.auth = (USER, PASSWORD)

    def get(self, path: str, accept: str = ACCEPT) -> requests.Response:
        return requests.get(f"{self.base}/{path}", auth=self.auth, headers={"Accept": accept},
                            timeout=30)

    def referrers(self, digest: str) -> list[dict[str, Any]]:
        """The spec's discovery: the referrers API, else the fallback tag's index."""
        api = self.get(f"referrers/{digest}")
        if api.status_code == 200:
            return list(api.json()["manifests"])
        assert api.status_code == 404  # distribution 2.8: no referrers API
        index = self.get(f"manifests/{digest.replace(':', '-')}")
        assert index.status_code == 200, index.text
        assert index.headers["Content-Type"].startswith(OCI_INDEX)
        return list(index.json()["manifests"])


def test_a_pushed_run_stores_its_results_where_any_oci_client_finds_them(
        tmp_path: Path, busybox_image: str, registry: Registry, registry_env: None,  # noqa: F811
        docker_client: docker.DockerClient, capsys: pytest.CaptureFixture[str]) -> None:
    repo = f"immu-it/results-{uuid.uuid4().hex[:6]}"
    # One failing and one passing case (calc), plus one passing (it): the run fails.
    code, result = pushed_run(tmp_path, registry, repo,
                              "cp /fixtures/unit.xml /fixtures/it.xml /immu/results/", capsys)
    assert code == 1 and result["digest"]
    digest = result["digest"]
    client = ThirdParty(registry, repo)
    listed = [e for e in client.referrers(digest) if e.get("artifactType") == IN_TOTO]
    assert len(listed) == 1
    assert listed[0]["annotations"]["in-toto.io/predicate-type"] == TEST_RESULT
    manifest = client.get(f"manifests/{listed[0]['digest']}")
    assert digest_of(manifest.content) == listed[0]["digest"]
    doc = manifest.json()
    assert doc["subject"]["digest"] == digest and doc["artifactType"] == IN_TOTO
    (layer,) = doc["layers"]
    assert layer["mediaType"] == IN_TOTO
    assert layer["annotations"]["in-toto.io/predicate-type"] == TEST_RESULT
    blob = client.get(f"blobs/{layer['digest']}", accept="*/*")
    assert digest_of(blob.content) == layer["digest"]
    statement = blob.json()
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == TEST_RESULT
    assert statement["subject"][0]["digest"] == {"sha256": digest.removeprefix("sha256:")}
    predicate = statement["predicate"]
    # The counts match the JUnit the suite wrote.
    assert predicate["result"] == "FAILED"
    assert sorted(predicate["passedTests"]) == ["unit: calc.test_add", "unit: reach"]
    assert predicate["failedTests"] == ["unit: calc.test_div"]
    assert predicate["warnedTests"] == []
    assert predicate["immuAction"]["totals"]["tests"] == result["totals"]["tests"] == 3
    assert [t["durationSeconds"] for t in predicate["immuAction"]["suites"][0]["tests"]
            if t["name"] == "calc.test_div"] == [0.02]
    assert predicate["configuration"][0]["name"] == "immu.yml"
    # The predicate file for actions/attest is the statement's predicate.
    attestation = result["attestation"]
    assert attestation["artifact"] == f"{registry.host}/{repo}@{listed[0]['digest']}"
    assert json.loads(Path(attestation["predicate_path"]).read_text()) == predicate
    # `immu verify` refuses the digest: its only results fail.
    code = main(["verify", f"{registry.host}/{repo}@{digest}", "--json"])
    verdict = json.loads(capsys.readouterr().out)
    assert code == 1 and verdict["passed"] is False
    assert verdict["runs"][0]["problem"] == "failing results"
    assert_clean(docker_client)


def test_verify_passes_a_digest_with_passing_results_and_refuses_one_without(
        tmp_path: Path, busybox_image: str, registry: Registry, registry_env: None,  # noqa: F811
        pushed_images: list[Pushed], capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    repo = f"immu-it/verified-{uuid.uuid4().hex[:6]}"
    code, result = pushed_run(tmp_path, registry, repo, "cp /fixtures/it.xml /immu/results/",
                              capsys)
    assert code == 0, result
    assert main(["verify", f"{registry.host}/{repo}@{result['digest']}", "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["passed"] and verdict["passing_run"].startswith("local-")
    # The staging tag resolves to the same digest: a tag may be named too.
    assert main(["verify", f"{registry.host}/{repo}:{result['staging_tag']}"]) == 0
    capsys.readouterr()
    # An image nobody tested: no results, exit 3, said plainly.
    bare = pushed_images[0]
    assert main(["verify", bare.by_digest]) == 3
    assert "no test results stored" in capsys.readouterr().err
    # Another run's ID: not this digest's results.
    assert main(["verify", f"{registry.host}/{repo}@{result['digest']}", "--run", "999"]) == 3
    capsys.readouterr()


def test_concurrent_writers_of_one_referrers_list_lose_no_entry(
        registry: Registry, pushed_images: list[Pushed]) -> None:  # noqa: F811
    subject = pushed_images[0]
    repo = subject.repository.split("/", 1)[1]
    target = registry.client().get_manifest(repo, subject.digest)
    writers, start, errors = 6, threading.Barrier(6), []
    mine = uuid.uuid4().hex

    def write(i: int) -> None:
        client = registry.client()
        manifest = artifact_manifest(
            artifact_type="application/vnd.immu.test.race", subject_digest=target.digest,
            subject_size=len(target.data), subject_media_type=target.media_type,
            annotations={"n": f"{mine}-{i}"})
        try:
            start.wait()
            attach(client, repo, manifest, subject=target.digest)
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    found = {e.annotations.get("n") for e in
             list_referrers(registry.client(), repo, target.digest,
                            "application/vnd.immu.test.race")}
    assert {f"{mine}-{i}" for i in range(writers)} <= found
    # The list is the spec's: an OCI index under the digest's fallback tag.
    index = registry.client().get_manifest(repo, fallback_tag(target.digest))
    assert index.media_type == OCI_INDEX


def test_a_promotion_to_another_registry_carries_the_results_along(
        tmp_path: Path, busybox_image: str, registry: Registry,  # noqa: F811
        registry2: Registry, registry_env: None,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    repo = f"immu-it/carried-{uuid.uuid4().hex[:6]}"
    code, result = pushed_run(tmp_path, registry, repo, "cp /fixtures/it.xml /immu/results/",
                              capsys)
    assert code == 0, result
    digest = result["digest"]
    target = f"{registry2.host}/immu-it/prod-{uuid.uuid4().hex[:6]}"
    assert main(["promote", f"{registry.host}/{repo}@{digest}", f"{target}:v1"]) == 0
    capsys.readouterr()
    listed = ThirdParty(registry2, target.split("/", 1)[1]).referrers(digest)
    kinds = sorted(str(e.get("artifactType")) for e in listed)
    # The results statement came along; the new tag's own record joined it.
    assert kinds == ["application/vnd.immu.promotion.v1+json", IN_TOTO]
    assert main(["verify", f"{target}@{digest}"]) == 0
    capsys.readouterr()
    # `immu trace` shows, for the digest behind the tag, the results stored with it.
    assert main(["trace", f"{target}:v1", "--json"]) == 0
    traced = json.loads(capsys.readouterr().out)
    assert traced["digest"] == digest
    (run,) = traced["results"][digest]
    assert run["passed"] and run["results"][0]["totals"]["tests"] == 1, traced


def _artifact(target: Any, note: str) -> bytes:
    return artifact_manifest(artifact_type="application/vnd.immu.test.fault",
                             subject_digest=target.digest, subject_size=len(target.data),
                             subject_media_type=target.media_type, annotations={"n": note})


@pytest.mark.parametrize("fault", [412, 429, 503])
def test_a_refused_or_failed_update_of_the_referrers_list_is_retried(
        registry: Registry, pushed_images: list[Pushed], registry_env: None,  # noqa: F811
        fault: int) -> None:
    """412: another writer came first (conditional write): read and merge again. 429/503:
    the transport's bounded retry. Either way the entry ends up listed, once."""
    repo = f"immu-it/fault-{fault}-{uuid.uuid4().hex[:6]}"
    src = pushed_images[0]
    assert main(["promote", src.by_digest, f"{registry.host}/{repo}:seed"]) == 0
    target = registry.client().get_manifest(repo, src.digest)
    with FaultProxy(registry.port) as proxy:
        proxy.add(Rule(method="PUT", path=rf"/{repo}/manifests/sha256-", status=fault,
                       headers={"Retry-After": "0"}))
        via = RegistryClient(proxy.host, credentials=Credentials(username=USER,
                                                                 password=PASSWORD),
                             sleep=lambda _s: None)
        entry = attach(via, repo, _artifact(target, "x"), subject=target.digest)
        assert proxy.count("PUT", r"/manifests/sha256-") == 2  # refused once, then written
    listed = list_referrers(registry.client(), repo, target.digest)
    assert [e.digest for e in listed].count(entry.digest) == 1


def test_a_referrers_tag_that_is_not_an_index_is_never_overwritten(
        registry: Registry, pushed_images: list[Pushed],  # noqa: F811
        registry_env: None) -> None:  # noqa: F811
    repo = f"immu-it/squat-{uuid.uuid4().hex[:6]}"
    src = pushed_images[0]
    assert main(["promote", src.by_digest, f"{registry.host}/{repo}:seed"]) == 0
    target = registry.client().get_manifest(repo, src.digest)
    # Another tool put an image (not an index) under the digest's referrers tag.
    registry.client().put_manifest(repo, fallback_tag(src.digest), target.data,
                                   target.media_type)
    with pytest.raises(RegistryError, match=r"not an image index.*refusing to overwrite"):
        attach(registry.client(), repo, _artifact(target, "y"), subject=target.digest)
    # the squatted tag still holds what it held
    assert registry.client().head_manifest(repo, fallback_tag(src.digest)) == src.digest
