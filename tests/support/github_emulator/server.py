"""The emulator's HTTP side: a threaded loopback server, auth, faults, read-only tokens,
call recording, and OpenAPI validation of every request and response."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from tests.support.github_emulator import routes, routes_refs  # noqa: F401  (registers routes)
from tests.support.github_emulator.routes import ROUTES, HttpError
from tests.support.github_emulator.spec import OpenAPI
from tests.support.github_emulator.state import RepoState

FaultKind = Literal["502", "secondary", "secondary-body", "429", "primary", "forbidden"]
DOCS = "https://docs.github.com/rest"
_SPEC: OpenAPI | None = None


@dataclass(frozen=True)
class Call:
    """One request the emulator received."""

    method: str
    path: str
    query: str
    status: int


@dataclass
class Fault:
    """The next ``remaining`` requests matching ``method`` + ``pattern`` answer ``kind``."""

    method: str
    pattern: re.Pattern[str]
    kind: FaultKind
    remaining: int
    wait_s: int


def _fault_response(fault: Fault) -> tuple[int, dict[str, str], dict[str, Any]]:
    secondary = "You have exceeded a secondary rate limit. Please wait a few minutes."
    if fault.kind == "502":
        return 502, {}, {"message": "Server Error"}
    if fault.kind == "secondary":
        return 403, {"Retry-After": str(fault.wait_s)}, {"message": secondary}
    if fault.kind == "secondary-body":  # no header: only the message says "rate limit"
        return 403, {}, {"message": secondary}
    if fault.kind == "429":
        return 429, {"Retry-After": str(fault.wait_s)}, {"message": secondary}
    if fault.kind == "primary":
        reset = str(int(time.time()) + fault.wait_s)
        return 403, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, {
            "message": "API rate limit exceeded for installation ID 1."}
    return 403, {}, {"message": "Resource not accessible by integration"}


class GitHubEmulator:
    """GitHub REST for one repository on 127.0.0.1; ``violations`` must stay empty."""

    def __init__(self, *, owner: str = "acme", repo: str = "shop",
                 token: str = "ghs_emulator", prefix: str = "") -> None:
        global _SPEC
        _SPEC = _SPEC or OpenAPI()  # parsing the subset once per session keeps tests fast
        self.spec = _SPEC
        self.state = RepoState(owner=owner, name=repo)
        self.token = token
        self.prefix = prefix.rstrip("/")  # "/api/v3": GitHub Enterprise Server's API root
        self.read_only = False
        self.calls: list[Call] = []
        self.violations: list[str] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.emulator = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self) -> str:
        """Base URL, used as ``GITHUB_API_URL``."""
        return f"http://127.0.0.1:{self._server.server_port}{self.prefix}"

    @property
    def web_url(self) -> str:
        """The repository's web page (html_url of objects)."""
        return f"https://github.example/{self.state.full_name}"

    def start(self) -> GitHubEmulator:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def inject(self, method: str, pattern: str, kind: FaultKind, *, times: int = 1,
               wait_s: int = 1) -> None:
        """Make the next ``times`` matching requests fail as ``kind``."""
        self.faults.append(Fault(method, re.compile(pattern), kind, times, wait_s))

    def start_job(self, name: str, sha: str) -> int:
        """A workflow job starts on ``sha``: on GitHub every job is a check run of the Actions
        app named after the job, in progress while it runs. Returns its id."""
        with self._lock:
            run = routes.new_check_run(self, name=name, head_sha=sha, status="in_progress",
                                       external_id=str(uuid.uuid4()))
            self.state.jobs[run["id"]] = name
            return int(run["id"])

    def finish_job(self, ident: int, conclusion: str = "success") -> None:
        """The job ended: its check run completes (as the runner reports it)."""
        with self._lock:
            run = self.state.check_runs[ident]
            run.update(status="completed", conclusion=conclusion, completed_at=routes.NOW)

    def count(self, method: str | None = None, pattern: str = "") -> int:
        """How many recorded calls match ``method`` and the path regex ``pattern``."""
        return sum(1 for c in self.calls if (method is None or c.method == method)
                   and re.search(pattern, c.path))

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes
               ) -> tuple[int, dict[str, str], Any]:
        """Answer one request (serialised: the state is a plain dict store)."""
        parts = urlsplit(target)
        path = parts.path
        with self._lock:
            if not path.startswith(self.prefix + "/"):
                self.violations.append(f"{method} {path}: outside the API root {self.url}")
                status, extra, body = 404, {}, {"message": "Not Found"}
            else:
                path = path[len(self.prefix):]
                status, extra, body = self._answer(method, path, parts.query, headers, raw)
            self.calls.append(Call(method, path, parts.query, status))
        return status, extra, body

    def _answer(self, method: str, path: str, query: str, headers: dict[str, str], raw: bytes
                ) -> tuple[int, dict[str, str], Any]:
        auth = headers.get("authorization", "")
        if auth not in (f"token {self.token}", f"Bearer {self.token}"):
            return 401, {}, {"message": "Bad credentials", "documentation_url": DOCS}
        for fault in self.faults:
            if fault.remaining and fault.method == method and fault.pattern.search(path):
                fault.remaining -= 1
                return _fault_response(fault)
        op = self.spec.find(method, path)
        if op is None or (method, op.template) not in ROUTES:
            self.violations.append(f"{method} {path}: not an operation of the OpenAPI subset")
            return 404, {}, {"message": "Not Found", "documentation_url": DOCS}
        if self.read_only and method != "GET":
            return 403, {}, {"message": "Resource not accessible by integration",
                             "documentation_url": DOCS}
        # Uploads are raw bytes whatever their Content-Type; other bodies are JSON.
        is_json = "application/json" in op.raw.get("requestBody", {}).get("content", {})
        try:
            body = json.loads(raw) if is_json and raw else (raw or None)
        except ValueError:
            self.violations.append(f"{method} {path}: body is not JSON")
            return 400, {}, {"message": "Problems parsing JSON"}
        query_map = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        errors = self.spec.request_errors(op, parse_qs(query), body, is_json)
        if errors:
            self.violations += [f"{method} {path} request: {e}" for e in errors]
            return 422, {}, {"message": "Invalid request.", "errors": errors}
        args = list(op.regex.match(path).groups())  # type: ignore[union-attr]
        try:
            status, answer = ROUTES[(method, op.template)](self, args, query_map, body)
        except HttpError as e:
            status, answer = e.status, {"message": e.message, "documentation_url": DOCS}
            if str(status) not in op.raw.get("responses", {}):
                return status, {}, answer  # GitHub documents only some error answers
        except Exception as e:  # an emulator bug must fail the test, not hang the client
            self.violations.append(f"{method} {path}: emulator crashed: {e!r}")
            return 500, {}, {"message": "emulator error"}
        self.violations += [f"{method} {path} response {status}: {e}"
                            for e in self.spec.response_errors(op, status, answer)]
        return status, {}, answer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        emulator: GitHubEmulator = self.server.emulator  # type: ignore[attr-defined]
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, extra, body = emulator.handle(self.command, self.path, headers, raw)
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for key, value in extra.items():
            self.send_header(key, value)
        if status != 204:
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if status != 204:
            self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the emulator's call list is the log."""
