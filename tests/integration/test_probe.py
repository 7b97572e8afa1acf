"""The engine's ``/info`` without docker-py (``adapters.docker.probe``): what ``immu run``
reads before it launches buildx. Checked against every engine and docker-py's own answer,
and against a Unix-socket HTTP server that fails the ways an engine can."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from immu_action.adapters.docker import probe
from immu_action.cli import main
from immu_action.errors import EngineError
from tests.support.engines import Engine, engine  # noqa: F401


def test_the_probe_reads_what_docker_py_reads_on_every_engine(engine: Engine) -> None:  # noqa: F811
    info = probe.engine_info(engine.env["DOCKER_HOST"])
    assert info is not None
    assert info["DriverStatus"] == engine.client.info()["DriverStatus"]
    assert probe.store_is_containerd(info) is engine.containerd_store


def test_hosts_other_than_a_unix_socket_are_left_to_docker_py() -> None:
    assert probe.engine_info("tcp://127.0.0.1:2375") is None
    assert probe.engine_info("ssh://user@host") is None
    assert probe.unix_socket(None) == probe.DEFAULT_SOCKET
    assert probe.unix_socket("unix:///run/x.sock") == "/run/x.sock"


def test_no_engine_at_the_socket_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"no Docker engine answers at unix://.*absent.sock"
                                          r".*start one with"):
        probe.engine_info(f"unix://{tmp_path}/absent.sock")


class _Flaky(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    answers: list[tuple[int, bytes]]
    asked = 0


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Flaky

    def do_GET(self) -> None:
        status, body = self.server.answers[min(self.server.asked, len(self.server.answers) - 1)]
        self.server.asked += 1
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass

    def address_string(self) -> str:
        return "unix"


@pytest.fixture
def flaky(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[_Flaky, str]]:
    monkeypatch.setattr(probe, "INFO_BACKOFF_S", 0.01)
    server = _Flaky(str(tmp_path / "engine.sock"), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"unix://{tmp_path}/engine.sock"
    finally:
        server.shutdown()
        server.server_close()


CONTAINERD = json.dumps({"DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]]})


def test_an_engine_answering_500_is_asked_again(flaky: tuple[_Flaky, str]) -> None:
    server, host = flaky
    server.answers = [(500, b'{"message": "busy"}'), (503, b"{}"), (200, CONTAINERD.encode())]
    info = probe.engine_info(host)
    assert info is not None and probe.store_is_containerd(info) and server.asked == 3


def test_an_engine_that_keeps_failing_is_one_clear_error_after_bounded_tries(
        flaky: tuple[_Flaky, str]) -> None:
    server, host = flaky
    server.answers = [(500, b'{"message": "the engine is in trouble"}')]
    with pytest.raises(EngineError, match=r"answered 500 to GET /info: .*in trouble"):
        probe.engine_info(host)
    assert server.asked == probe.INFO_ATTEMPTS


def test_an_answer_that_is_not_json_is_an_engine_error(flaky: tuple[_Flaky, str]) -> None:
    server, host = flaky
    server.answers = [(200, b"<html>a proxy</html>")]
    with pytest.raises(EngineError, match="sent no JSON for /info"):
        probe.engine_info(host)


class _Garbage(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    asked = 0


class _GarbageHandler(socketserver.BaseRequestHandler):
    server: _Garbage

    def handle(self) -> None:
        self.server.asked += 1
        self.request.recv(4096)
        self.request.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")


def test_a_socket_that_does_not_speak_http_is_asked_again_then_one_clear_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe, "INFO_BACKOFF_S", 0.01)
    server = _Garbage(str(tmp_path / "other.sock"), _GarbageHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(EngineError, match=r"no Docker engine answers at unix://.*other.sock "
                                              r"\(not an HTTP answer: b'SSH-2.0"):
            probe.engine_info(f"unix://{tmp_path}/other.sock")
        assert server.asked == probe.INFO_ATTEMPTS
    finally:
        server.shutdown()
        server.server_close()


def test_an_answer_asked_ahead_is_the_next_one_taken_once(flaky: tuple[_Flaky, str]) -> None:
    """``immu run`` asks before it imports the pipeline; the build's question takes that
    answer (no second request), and a later question asks the engine again."""
    server, host = flaky
    server.answers = [(200, CONTAINERD.encode())]
    probe.ask_info_ahead(host)
    info = probe.engine_info(host)
    assert info is not None and probe.store_is_containerd(info) and server.asked == 1
    probe.engine_info(host)
    assert server.asked == 2


def test_an_answer_asked_ahead_of_another_engine_is_not_taken(
        flaky: tuple[_Flaky, str], tmp_path: Path) -> None:
    server, host = flaky
    server.answers = [(200, CONTAINERD.encode())]
    probe.ask_info_ahead(f"unix://{tmp_path}/absent.sock")
    assert probe.engine_info(host) is not None and server.asked == 1


def test_an_error_asked_ahead_is_raised_where_the_answer_is_wanted(tmp_path: Path) -> None:
    probe.ask_info_ahead(f"unix://{tmp_path}/absent.sock")  # raises nothing here
    with pytest.raises(EngineError, match=r"no Docker engine answers at unix://.*absent.sock"):
        probe.engine_info(f"unix://{tmp_path}/absent.sock")


def test_immu_run_asks_ahead_and_forgets_what_it_did_not_take(
        flaky: tuple[_Flaky, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`immu run` asks the engine before it loads the spec; a run that ends without the
    answer (here: no spec) leaves nothing for a later question in the same process."""
    server, host = flaky
    server.answers = [(200, CONTAINERD.encode())]
    monkeypatch.setenv("DOCKER_HOST", host)
    assert main(["run", "-f", str(tmp_path / "absent.yml")]) == 2
    assert probe.engine_info(host) is not None
    deadline = time.monotonic() + 5
    while server.asked < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.asked == 2  # the run's own question, then this one's
