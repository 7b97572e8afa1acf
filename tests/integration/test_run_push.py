"""`immu run --push`: the tests run from repository@digest, and the run proves it shipped that."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

from immu_action.adapters.registry.verify import verify_pushed
from immu_action.cli import main
from tests.integration.test_pipeline_docker import assert_clean, write_project
from tests.support.registry import Registry, registry, registry_env  # noqa: F401

pytestmark = pytest.mark.docker


def test_push_then_test_the_digest(tmp_path: Path, busybox_image: str, registry: Registry,  # noqa: F811
                                   registry_env: None,  # noqa: F811
                                   docker_client: docker.DockerClient,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_project(tmp_path, busybox_image, f"""\
    version: 1
    image: {{repository: {registry.host}/immu-it/pushed}}
    tests:
      unit: {{command: [sh, -c, "cp /fixtures/it.xml /immu/results/"]}}
    """)
    code = main(["run", "-f", str(spec), "--push", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["digest"].startswith("sha256:")
    assert result["image"] == f"{registry.host}/immu-it/pushed@{result['digest']}"
    assert result["tested_is_shipped"] is True
    assert result["totals"]["tests"] == 1 and result["ok"]
    # Independently: the registry serves that digest under the staging tag, whose config is
    # the image the suites ran.
    assert result["staging_tag"].startswith("immu-staging-")
    pushed = verify_pushed(f"{registry.host}/immu-it/pushed", result["staging_tag"],
                           result["image_id"])
    assert pushed.manifest_digest == result["digest"]
    assert_clean(docker_client)


def test_push_with_a_wrong_password_is_a_clear_error(tmp_path: Path, busybox_image: str,
                                                     registry: Registry,  # noqa: F811
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_project(tmp_path, busybox_image, f"""\
    version: 1
    image: {{repository: {registry.host}/immu-it/denied}}
    tests:
      unit: {{command: ["true"]}}
    """)
    monkeypatch.setenv("IMMU_REGISTRY_USERNAME", "immu")
    monkeypatch.setenv("IMMU_REGISTRY_PASSWORD", "not-the-password-xyz")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "empty-docker-config"))
    code = main(["run", "-f", str(spec), "--push"])
    err = capsys.readouterr().err
    assert code == 4
    assert "not allowed to" in err and "docker login" in err, err
    assert "not-the-password-xyz" not in err
    assert "Traceback" not in err


def test_promote_true_outside_actions_is_refused_after_the_tests(
        tmp_path: Path, busybox_image: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    spec = write_project(tmp_path, busybox_image, """\
    version: 1
    image: {repository: local/immu-promote-true}
    tests:
      unit: {command: ["true"], junit: false}
    promote: {branches: [main], tags: [latest]}
    """)
    code = main(["run", "-f", str(spec), "--promote", "true", "--json"])
    out, err = capsys.readouterr()
    assert code == 3
    assert json.loads(out)["ok"] is True  # the tests ran and passed; only promotion was refused
    assert "promotion refused" in err and "GitHub Actions" in err
    # With failing tests the tests decide the exit code.
    (tmp_path / "immu.yml").write_text((tmp_path / "immu.yml").read_text()
                                       .replace('["true"]', '["false"]'))
    assert main(["run", "-f", str(spec), "--promote", "true"]) == 1
