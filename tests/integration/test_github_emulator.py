"""The emulator keeps itself and its clients honest: GitHub's OpenAPI decides what is valid."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import requests

from immu_action.adapters.github.client import client_for
from immu_action.stages.report import publish
from tests.support.github_emulator import GitHubEmulator, OpenAPI
from tests.support.github_emulator.helpers import FAST, SHA, context, run_result

pytest_plugins = ["pytester"]

AUTH = {"Authorization": "token ghs_emulator"}


def test_invalid_request_answers_422_and_is_recorded() -> None:
    emu = GitHubEmulator().start()
    try:
        r = requests.post(f"{emu.url}/repos/acme/shop/statuses/{'a' * 40}",
                          json={"state": "green"}, headers=AUTH, timeout=5)
        assert r.status_code == 422
        r = requests.post(f"{emu.url}/repos/acme/shop/check-runs", headers=AUTH, timeout=5,
                          json={"name": "immu", "head_sha": "a" * 40,
                                "output": {"title": "t", "summary": "s",
                                           "annotations": [{"path": "x"}] * 51}})
        assert r.status_code == 422
        r = requests.get(f"{emu.url}/repos/acme/shop/issues/1/comments?bogus=1",
                         headers=AUTH, timeout=5)
        assert r.status_code == 422
    finally:
        emu.stop()
    assert any("'green' is not one of" in v for v in emu.violations)
    assert any("annotations: breaks maxItems: 50" in v for v in emu.violations)
    assert any("'bogus' is not defined" in v for v in emu.violations)
    assert emu.state.statuses == [] and emu.state.check_runs == {}


def test_undocumented_operation_is_a_violation() -> None:
    emu = GitHubEmulator().start()
    try:
        r = requests.get(f"{emu.url}/repos/acme/shop", headers=AUTH,
                         timeout=5)
        assert r.status_code == 404
    finally:
        emu.stop()
    assert emu.violations == [
        "GET /repos/acme/shop: not an operation of the OpenAPI subset"]


def test_response_validation_catches_a_wrong_response() -> None:
    spec = OpenAPI()
    op = spec.find("POST", "/repos/acme/shop/check-runs")
    assert op is not None
    good = spec.skeleton("check-run", id=1, name="immu")
    assert spec.response_errors(op, 201, good) == []
    errors = spec.response_errors(op, 201, {**good, "id": "1", "status": "done"})
    assert any("'1' is not of type 'integer'" in e for e in errors)
    assert any("'done' is not one of" in e for e in errors)
    assert spec.response_errors(op, 418, good) == ["status 418 is not a documented response"]


def test_auth_read_only_and_call_record() -> None:
    emu = GitHubEmulator().start()
    emu.state.add_branch("main", "a" * 40)
    try:
        assert requests.get(f"{emu.url}/repos/acme/shop/branches/main",
                            timeout=5).status_code == 401
        emu.read_only = True
        assert requests.get(f"{emu.url}/repos/acme/shop/branches/main", headers=AUTH,
                            timeout=5).status_code == 200
        r = requests.post(f"{emu.url}/repos/acme/shop/statuses/{'a' * 40}", headers=AUTH,
                          json={"state": "success"}, timeout=5)
        assert r.status_code == 403
        assert r.json()["message"] == "Resource not accessible by integration"
    finally:
        emu.stop()
    assert [c.status for c in emu.calls] == [401, 200, 403]
    assert emu.count("GET", "/branches/") == 2 and emu.violations == []


def test_fault_injection_applies_to_the_next_n_matching_requests() -> None:
    emu = GitHubEmulator().start()
    emu.state.add_branch("main", "a" * 40)
    emu.inject("GET", "/branches/", "primary", times=2, wait_s=30)
    try:
        url = f"{emu.url}/repos/acme/shop/branches/main"
        first = requests.get(url, headers=AUTH, timeout=5)
        second = requests.get(url, headers=AUTH, timeout=5)
        third = requests.get(url, headers=AUTH, timeout=5)
    finally:
        emu.stop()
    assert (first.status_code, second.status_code, third.status_code) == (403, 403, 200)
    assert first.headers["X-RateLimit-Remaining"] == "0"
    assert int(first.headers["X-RateLimit-Reset"]) > 0
    assert emu.violations == []


def test_enterprise_api_root_is_honoured_for_every_call(tmp_path: Any,
                                                         monkeypatch: Any) -> None:
    """GITHUB_API_URL with a path (GHES: /api/v3): every call, uploads included, stays there."""
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    emu = GitHubEmulator(prefix="/api/v3").start()
    emu.state.add_branch("main", SHA)
    try:
        ctx = replace(context(emu, ref="refs/tags/v1.0.0"), api_url=emu.url)
        publish(run_result(), ctx, promotion=None, gh=client_for(ctx, FAST))
    finally:
        emu.stop()
    assert emu.violations == []
    assert emu.count("POST", "/releases/.*/assets$") == 2  # no junit.xml given
    assert len(emu.calls) == 9 and all(c.path.startswith("/repos/acme/shop/") for c in emu.calls)


def test_a_spec_violation_fails_the_test_that_made_it(pytester: Any) -> None:
    pytester.makepyfile(test_bad="""
        import requests
        pytest_plugins = ["tests.support.github_emulator.fixture"]

        def test_sends_a_bad_status(emulator):
            requests.post(emulator.url + "/repos/acme/shop/statuses/" + "a" * 40,
                          json={"state": "green"}, timeout=5,
                          headers={"Authorization": "token " + emulator.token})
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)  # the finaliser turns it into an error
    result.stdout.fnmatch_lines(["*'green' is not one of*"])
