"""A small threaded HTTP proxy on loopback in front of a real registry.

Pass-through by default (streaming both ways, so 300 MB layers never sit in memory); it
counts requests and request-body bytes per method/path, and rules can inject a status
(with headers, e.g. ``Retry-After``) or corrupt a response body for matching requests,
a given number of times. Used for fault tests and for the benchmark's request counts.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}
CHUNK = 1 << 20


@dataclass
class Rule:
    """Inject ``status`` (or corrupt the upstream body) for ``times`` matching requests."""

    method: str
    path: str  # regex searched in the request path
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    corrupt: bool = False
    strip_query: bool = False  # forward without the query (a mount becomes a plain upload)
    drop_headers: tuple[str, ...] = ()  # forward, but strip these from the response
    after_forward: bool = False  # let the registry handle it, then answer ``status`` anyway
    # (a gateway that timed out after the backend finished)
    delay_s: float = 0.0  # forward after this pause (a slow request), unless ``status``
    times: int = 1
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.hits < self.times and method == self.method and bool(re.search(self.path, path))


@dataclass(frozen=True)
class Seen:
    """One request as the proxy saw it."""

    method: str
    path: str
    status: int
    body_bytes: int
    injected: bool


class FaultProxy:
    """Start with ``with FaultProxy(upstream_port) as proxy:``; ``proxy.host`` is host:port."""

    def __init__(self, upstream_port: int, *, bearer: tuple[str, str] | None = None,
                 tag_pages: int | None = None) -> None:
        """``bearer=(user, password)``: act as a token-auth registry in front of a Basic one.

        Clients then meet ``WWW-Authenticate: Bearer realm=<proxy>/token`` and must fetch a
        token with Basic credentials; the proxy forwards with those Basic credentials.
        ``tag_pages=N``: answer ``tags/list`` as a paginating registry does (GHCR, Docker
        Hub, distribution 3): case-insensitive lexical order, ``n`` (at most N) and ``last``
        honoured, a ``Link: <...>; rel="next"`` header while more tags follow. Distribution
        2.8 behind it sends every tag unsorted in one answer.
        """
        self.upstream_port = upstream_port
        self.bearer = bearer
        self.tag_pages = tag_pages
        self.tokens: dict[str, str] = {}  # token -> upstream Authorization header
        self.token_requests: list[str] = []  # the scope of each token request
        self.rules: list[Rule] = []
        self.seen: list[Seen] = []
        self.arrivals: list[tuple[float, str, str]] = []  # (monotonic time, method, path)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, rule: Rule) -> Rule:
        with self.lock:
            self.rules.append(rule)
        return rule

    def reset(self) -> None:
        with self.lock:
            self.rules.clear()
            self.seen.clear()

    def count(self, method: str | None = None, path: str = "") -> int:
        """Requests seen (after the proxy's own injections too) matching method/path regex."""
        return len([s for s in self.seen if (method is None or s.method == method)
                    and re.search(path, s.path)])

    def expire_tokens(self) -> None:
        """Forget issued tokens: the next request with an old token gets 401."""
        with self.lock:
            self.tokens.clear()

    def bytes_uploaded(self) -> int:
        return sum(s.body_bytes for s in self.seen)

    def _take_rule(self, method: str, path: str) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    return rule
        return None

    def _record(self, seen: Seen) -> None:
        with self.lock:
            self.seen.append(seen)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # A TLS hello (BuildKit tries https first) gets a 400 with a status line, as the
            # registry answers it, so the client falls back to plain HTTP (http.server's
            # default answers a request it cannot parse as HTTP/0.9: no status line).
            default_request_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _body_chunks(self):  # type: ignore[no-untyped-def]
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return
                        yield self.rfile.read(size)
                        self.rfile.readline()
                remaining = int(self.headers.get("Content-Length") or 0)
                while remaining > 0:
                    data = self.rfile.read(min(CHUNK, remaining))
                    if not data:
                        return
                    remaining -= len(data)
                    yield data

            def _token(self) -> None:
                import base64
                import secrets
                from urllib.parse import parse_qs, urlparse

                assert proxy.bearer is not None
                given = self.headers.get("Authorization", "")
                user, password = proxy.bearer
                basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
                proxy.token_requests.append(
                    " ".join(parse_qs(urlparse(self.path).query).get("scope", [])))
                if given != basic:
                    body, status = b'{"details":"bad credentials"}', 401
                else:
                    token = secrets.token_hex(16)
                    with proxy.lock:
                        proxy.tokens[token] = basic
                    body, status = json.dumps({"token": token, "expires_in": 300}).encode(), 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _bearer_ok(self) -> bool:
                """Check the Bearer token and swap in the upstream Basic credentials."""
                given = self.headers.get("Authorization", "")
                upstream = proxy.tokens.get(given.removeprefix("Bearer "))
                if given.startswith("Bearer ") and upstream:
                    del self.headers["Authorization"]
                    self.headers["Authorization"] = upstream
                    return True
                for _ in self._body_chunks():
                    pass
                realm = f"http://{proxy.host}/token"
                self.send_response(401)
                self.send_header("WWW-Authenticate",
                                 f'Bearer realm="{realm}",service="immu-test"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                proxy._record(Seen(self.command, self.path, 401, 0, True))
                return False

            def _handle(self) -> None:
                method, path = self.command, self.path
                with proxy.lock:
                    proxy.arrivals.append((time.monotonic(), method, path))
                rule = proxy._take_rule(method, path) if path.startswith("/token") else None
                if proxy.bearer and path.startswith("/token") and rule is None:
                    self._token()  # the proxy's own token service (rules may fail it)
                    return
                if proxy.bearer and rule is None and not self._bearer_ok():
                    return
                rule = rule or proxy._take_rule(method, path)
                if rule is not None and rule.status is not None and rule.after_forward:
                    self._forward(method, path, corrupt=False, override=rule.status)
                    return
                if rule is not None and rule.status is not None:
                    size = sum(len(c) for c in self._body_chunks())
                    self.send_response(rule.status)
                    for k, v in rule.headers.items():
                        self.send_header(k, v)
                    body = b'{"errors":[{"code":"INJECTED","message":"fault proxy"}]}'
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if method != "HEAD":
                        self.wfile.write(body)
                    proxy._record(Seen(method, path, rule.status, size, True))
                    return
                if rule is not None and rule.strip_query:
                    path = path.split("?", 1)[0]
                if rule is not None and rule.delay_s:
                    time.sleep(rule.delay_s)
                if proxy.tag_pages and method == "GET" and "/tags/list" in path:
                    self._tag_page(path)
                    return
                self._forward(method, path, corrupt=bool(rule and rule.corrupt),
                              drop={h.lower() for h in rule.drop_headers} if rule else set())

            def _tag_page(self, path: str) -> None:
                from urllib.parse import parse_qs, quote, urlparse

                assert proxy.tag_pages is not None
                url = urlparse(path)
                query = parse_qs(url.query)
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port,
                                                      timeout=30)
                auth = self.headers.get("Authorization")
                upstream.request("GET", url.path, headers={"Authorization": auth} if auth else {})
                resp = upstream.getresponse()
                body, status, link = resp.read(), resp.status, None
                challenge = resp.getheader("WWW-Authenticate")
                upstream.close()
                if status == 200:
                    doc = json.loads(body)
                    names = sorted(doc.get("tags") or [], key=lambda t: (t.lower(), t))
                    if "last" in query:
                        last = query["last"][0]
                        names = [t for t in names if (t.lower(), t) > (last.lower(), last)]
                    n = min(int(query.get("n", [proxy.tag_pages])[0]), proxy.tag_pages)
                    page, more = names[:n], len(names) > n
                    if more:
                        link = f'<{url.path}?n={n}&last={quote(page[-1])}>; rel="next"'
                    body = json.dumps({"name": doc.get("name"), "tags": page}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if link:
                    self.send_header("Link", link)
                if challenge:
                    self.send_header("WWW-Authenticate", challenge)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                proxy._record(Seen("GET", path, status, 0, False))

            def _forward(self, method: str, path: str, *, corrupt: bool,
                         override: int | None = None, drop: set[str] | None = None) -> None:
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port,
                                                      timeout=300)
                has_body = "Content-Length" in self.headers or "Transfer-Encoding" in self.headers
                upstream.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    if k.lower() not in HOP and k.lower() != "content-length":
                        upstream.putheader(k, v)
                sent = 0
                if has_body and self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    upstream.putheader("Content-Length", self.headers["Content-Length"])
                    upstream.endheaders()
                    for c in self._body_chunks():
                        upstream.send(c)
                        sent += len(c)
                elif has_body:
                    upstream.putheader("Transfer-Encoding", "chunked")
                    upstream.endheaders()
                    for c in self._body_chunks():
                        upstream.send(b"%x\r\n%s\r\n" % (len(c), c))
                        sent += len(c)
                    upstream.send(b"0\r\n\r\n")
                else:
                    upstream.endheaders()
                resp = upstream.getresponse()
                if override is not None:
                    resp.read()
                    upstream.close()
                    body = b'{"errors":[{"code":"INJECTED","message":"after the registry"}]}'
                    self.send_response(override)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    proxy._record(Seen(method, path, override, sent, True))
                    return
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP | (drop or set()) and k.lower() != "content-length":
                        self.send_header(k, v)
                proxy._record(Seen(method, path, resp.status, sent, False))
                if method == "HEAD" or resp.status in (204, 304):
                    length = resp.getheader("Content-Length")
                    if length is not None:
                        self.send_header("Content-Length", length)
                    self.end_headers()
                    upstream.close()
                    return
                length = resp.getheader("Content-Length")
                if corrupt or length is None:
                    body = resp.read()
                    if corrupt and body:
                        body = body[:-1] + b" " + body[-1:]  # same JSON, other bytes
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_header("Content-Length", length)
                    self.end_headers()
                    while chunk := resp.read(CHUNK):
                        self.wfile.write(chunk)
                upstream.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        return Handler
