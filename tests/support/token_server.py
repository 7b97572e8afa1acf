"""A Docker token server on loopback, and a token-auth registry that trusts it.

Real registries (GHCR, Docker Hub, ECR, Harbor) authenticate with the Bearer token flow:
the registry answers 401 ``WWW-Authenticate: Bearer realm=..,service=..``; the client
fetches ``GET realm?service=..&scope=repository:NAME:pull,push`` with Basic credentials and
retries with the JWT; the registry then only verifies a signature per request. This module
implements that token endpoint (stdlib ``http.server``, RS256 signed with ``cryptography``)
for the test USER/PASSWORD, granting every action asked for, and starts Debian's
``docker-registry`` in token mode (``IMMU_REGISTRY_AUTH=token`` of ``scripts/registry.sh``).
Like Docker Hub's, it hands out a refresh token when asked for offline access
(``offline_token=true``, which ``docker login`` sends: the CLI then stores it as the
config's ``identitytoken`` instead of the password) and serves the OAuth2 form
(``POST /token``, grant_type ``password`` or ``refresh_token``) of the distribution spec.

    python -m tests.support.token_server --port P --key K --cert C --service S --issuer I
        (serves until killed; USER/PASSWORD from IMMU_REGISTRY_TEST_USER/_PASSWORD)
"""

from __future__ import annotations

import argparse
import atexit
import base64
import hmac
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.registry import _TMP, PASSWORD, ROOT, USER, Registry, _free_port

TTL_S = 300


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, kw_only=True)
class Signer:
    """Makes RS256 JWTs the registry accepts: header x5c = the certificate it trusts."""

    key: rsa.RSAPrivateKey
    cert_der: bytes
    issuer: str

    @classmethod
    def load(cls, key: Path, cert: Path, issuer: str) -> Signer:
        """From the PEM key and certificate ``scripts/registry.sh`` wrote."""
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
        assert isinstance(private, rsa.RSAPrivateKey), f"{key}: not an RSA key"
        der = x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(
            serialization.Encoding.DER)
        return cls(key=private, cert_der=der, issuer=issuer)

    def token(self, *, subject: str, service: str, access: list[dict[str, object]]) -> str:
        """A signed JWT for ``subject`` granting ``access`` on ``service``."""
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self.cert_der).decode("ascii")]}
        claims = {"iss": self.issuer, "sub": subject, "aud": service, "exp": now + TTL_S,
                  "nbf": now - 1, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = ".".join(_b64url(json.dumps(part, separators=(",", ":")).encode())
                                 for part in (header, claims))
        signature = self.key.sign(signing_input.encode("ascii"), padding.PKCS1v15(),
                                  hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


def parse_scope(scope: str) -> dict[str, object] | None:
    """``repository:NAME:pull,push`` -> an access entry; None when malformed.

    NAME may hold a ``:`` (a registry-qualified name), so type is the first field and
    actions the last.
    """
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name or not actions:
        return None
    return {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}


class TokenServer:
    """A threaded token endpoint at ``http://127.0.0.1:PORT/token``; counts tokens issued."""

    def __init__(self, signer: Signer, *, user: str, password: str, port: int = 0) -> None:
        self.signer, self.user, self.password = signer, user, password
        self.issued = 0
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> user
        self.grants: list[str] = []  # grant_type of each OAuth2 POST
        self.read_only: set[str] = set()  # repositories granted pull only, whatever is asked
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TokenServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def authorised(self, header: str | None) -> str | None:
        """The user name when ``header`` is Basic with the right credentials, else None."""
        if not header or not header.startswith("Basic "):
            return None
        try:
            user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return self.check(user, secret)

    def check(self, user: str, secret: str) -> str | None:
        """``user`` when ``secret`` is its password, else None."""
        ok = hmac.compare_digest(user, self.user) & hmac.compare_digest(secret, self.password)
        return user if ok else None

    def grant(self, user: str, service: str, scopes: list[str], *,
              offline: bool) -> dict[str, object]:
        """The token answer for ``user``: a JWT for ``scopes`` (+ a refresh token)."""
        access = [a for s in scopes if (a := parse_scope(s))]
        for entry in access:  # like real token services: grant what is allowed, no error
            if entry["name"] in self.read_only:
                entry["actions"] = [a for a in entry["actions"] if a == "pull"]
        token = self.signer.token(subject=user, service=service, access=access)
        answer: dict[str, object] = {
            "token": token, "access_token": token, "expires_in": TTL_S,
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "scope": " ".join(scopes)}
        with self._lock:
            self.issued += 1
            if offline:
                refresh = secrets.token_urlsafe(24)
                self.refresh_tokens[refresh] = user
                answer["refresh_token"] = refresh
        return answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle on, the body waits for the
            # client's delayed ACK (~40 ms on loopback), which would swamp what we measure.
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:  # quiet: tests read their own logs
                pass

            def _reply(self, status: int, body: dict[str, object],
                       headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:  # http.server dispatches on this name
                url = urlsplit(self.path)
                if url.path != "/token":
                    self._reply(404, {"details": f"no such endpoint {url.path}"})
                    return
                user = outer.authorised(self.headers.get("Authorization"))
                if user is None:  # like real token servers: a bad password is a 401
                    self._reply(401, {"details": "incorrect username or password"},
                                {"WWW-Authenticate": 'Basic realm="immu-token"'})
                    return
                query = parse_qs(url.query)
                self._reply(200, outer.grant(
                    user, (query.get("service") or [""])[0], query.get("scope", []),
                    offline=(query.get("offline_token") or [""])[0] == "true"))

            def do_POST(self) -> None:  # the OAuth2 form of the distribution auth spec
                if urlsplit(self.path).path != "/token":
                    self._reply(404, {"details": f"no such endpoint {self.path}"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in
                        parse_qs(self.rfile.read(length).decode(), keep_blank_values=True).items()}
                grant_type = form.get("grant_type", "")
                outer.grants.append(grant_type)
                missing = [k for k in ("service", "client_id") if not form.get(k)]
                if missing or grant_type not in ("password", "refresh_token"):
                    self._reply(400, {"error": "invalid_request",
                                      "error_description": f"missing {missing} or bad "
                                                           f"grant_type {grant_type!r}"})
                    return
                if grant_type == "refresh_token":
                    user = outer.refresh_tokens.get(form.get("refresh_token", ""))
                else:
                    user = outer.check(form.get("username", ""), form.get("password", ""))
                if user is None:
                    self._reply(401, {"error": "invalid_grant"})
                    return
                self._reply(200, outer.grant(
                    user, form["service"], form.get("scope", "").split(),
                    offline=grant_type == "password" and form.get("access_type") == "offline"))

        return Handler


_STATE: dict[str, Registry] = {}
SERVERS: dict[str, TokenServer] = {}  # in-process token servers by registry name


def _script(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(ROOT / "scripts" / "registry.sh"), *args], capture_output=True,
                          text=True, env={**env, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/registry.sh {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(100):
        if proc.poll() is not None:
            raise RuntimeError(f"token server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"token server did not listen on 127.0.0.1:{port}")


def start_token_registry(name: str, *, own_process: bool = False) -> Registry:
    """Start (once per process) a token-auth registry ``name`` and its token server.

    ``own_process`` runs the token server as a separate Python process (the benchmark: the
    in-process client under measurement then shares no GIL with it); otherwise a thread.
    Both stop at interpreter exit. The registry's ``client()`` holds the test credentials.
    """
    if name in _STATE:
        return _STATE[name]
    token_port, port = _free_port(), _free_port()
    env = {"IMMU_REGISTRY_ROOT": str(_TMP), "IMMU_REGISTRY_TEST_USER": USER,
           "IMMU_REGISTRY_TEST_PASSWORD": PASSWORD, "IMMU_REGISTRY_AUTH": "token",
           "IMMU_REGISTRY_TOKEN_REALM": f"http://127.0.0.1:{token_port}/token"}
    out = dict(kv.split("=", 1) for kv in _script(env, "start", name, str(port)).split())
    atexit.register(_script, env, "stop", name)
    if own_process:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.token_server", "--port", str(token_port),
             "--key", out["key"], "--cert", out["cert"], "--issuer", out["issuer"]],
            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
        atexit.register(proc.wait, 10)
        atexit.register(proc.terminate)
        _wait_listening(token_port, proc)
    else:
        signer = Signer.load(Path(out["key"]), Path(out["cert"]), out["issuer"])
        server = TokenServer(signer, user=USER, password=PASSWORD, port=token_port).__enter__()
        atexit.register(server.__exit__)
        SERVERS[name] = server
    _STATE[name] = Registry(name=name, host=f"127.0.0.1:{port}", port=port,
                            root=Path(out["root"]), data=Path(out["data"]), log=Path(out["log"]))
    return _STATE[name]


def main() -> int:
    """Serve until killed (the benchmark runs it in its own process, off our GIL)."""
    parser = argparse.ArgumentParser(description="Docker token server on loopback")
    for flag in ("--key", "--cert", "--issuer"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    signer = Signer.load(Path(args.key), Path(args.cert), args.issuer)
    server = TokenServer(signer, user=os.environ.get("IMMU_REGISTRY_TEST_USER", "immu"),
                         password=os.environ.get("IMMU_REGISTRY_TEST_PASSWORD", "immu-test-pw"),
                         port=args.port)
    print(f"token server {server.realm}", flush=True)
    server.server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
