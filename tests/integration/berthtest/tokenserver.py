"""A Docker token-protocol authorization server for tests.

Implements the "token" flow of the distribution spec
(https://distribution.github.io/distribution/spec/auth/token/):

    GET  /token?service=SVC&scope=repository:NAME:pull,push  [Authorization: Basic ...]
    POST /token  (OAuth2 form: grant_type=password, username, password, scope, service)

and answers ``{"token": JWT, "access_token": JWT, "expires_in": 300,
"issued_at": RFC3339}``.  JWTs are signed RS256 or ES256 with a
self-signed certificate.  The JWT header carries both ``x5c`` (the signing
certificate) and ``kid`` (its docker/libtrust key ID), and the certificate
is what the registry gets as ``rootcertbundle``, so docker-registry accepts
the token by either route.

Usage::

    with TokenServer(users={"alice": "secret"}) as ts:
        with Registry(token_auth=ts) as reg:
            ...
        assert ts.tokens_issued >= 1
"""

import base64
import datetime
import http.server
import json
import os
import shutil
import ssl
import tempfile
import threading
import time
import urllib.parse
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from .pki import libtrust_key_id, self_signed_signing_cert

__all__ = ["TokenServer", "b64url"]


def b64url(data):
    """Unpadded base64url, as JWS wants it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def parse_scope(scope):
    """Parse ``type:name:actions`` -> (type, name, [actions]).

    The name may itself contain ':' (``repository:host:5000/x:pull``).
    """
    typ, rest = scope.split(":", 1)
    name, actions = rest.rsplit(":", 1)
    return typ, name, [a for a in actions.split(",") if a]


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "berthtest-tokenserver/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep pytest output quiet
        pass

    def _reply(self, code, body, extra_headers=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _basic(self):
        h = self.headers.get("Authorization", "")
        if not h.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(h[6:].strip()).decode().partition(":")
        except Exception:
            return ("", "\0invalid")
        return user, password

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        self.server.owner._handle(self, "GET", url.path, q.get("service", [""])[0],
                                  q.get("scope", []), self._basic())

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length", "0") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        creds = None
        if form.get("grant_type", [""])[0] == "password":
            creds = (form.get("username", [""])[0], form.get("password", [""])[0])
        scopes = []
        for s in form.get("scope", []):
            scopes.extend(s.split(" "))
        self.server.owner._handle(self, "POST", url.path, form.get("service", [""])[0],
                                  scopes, creds or self._basic())


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class TokenServer:
    """Threaded Docker token server on 127.0.0.1.

    Parameters:
      users: ``{user: password}`` accepted with Basic auth (or OAuth2 password grant).
      anonymous_pull: anonymous requests get ``pull`` on any repository
        (otherwise they get a token with no access, and the registry refuses).
      algorithm: ``"ES256"`` or ``"RS256"``.
      permissions: optional ``callable(user, type, name, actions) -> actions``
        to restrict what an authenticated user is granted (default: all asked).
      tls_ca: a :class:`berthtest.pki.CertAuthority`; if given, serve HTTPS
        with a certificate from it.
      service, issuer: values put in the registry config and the JWT.
      expires_in: token lifetime in seconds.
      key_hint: which JWT header tells the registry the signing key:
        ``"both"`` (default: ``x5c`` and ``kid``), ``"x5c"`` or ``"kid"`` only.

    Counters for assertions (thread-safe snapshot via ``stats()``):
      ``requests`` (list of dicts: method, path, service, scopes, user, status),
      ``tokens_issued`` (int), ``auth_failures`` (int).
    """

    def __init__(self, users=None, anonymous_pull=False, algorithm="ES256",
                 permissions=None, tls_ca=None, service="berth-test-registry",
                 issuer="berth-test-issuer", expires_in=300, key_hint="both"):
        if algorithm not in ("ES256", "RS256"):
            raise ValueError("algorithm must be ES256 or RS256")
        self.users = dict(users or {})
        self.anonymous_pull = anonymous_pull
        if key_hint not in ("both", "x5c", "kid"):
            raise ValueError("key_hint must be both, x5c or kid")
        self.key_hint = key_hint
        self.algorithm = algorithm
        self.permissions = permissions
        self.service = service
        self.issuer = issuer
        self.expires_in = expires_in
        self.tls_ca = tls_ca
        self.workdir = tempfile.mkdtemp(prefix="berth-tokenserver-")
        (self._cert, self._key, self.cert_path,
         self.key_path) = self_signed_signing_cert(self.workdir, "token-signer", algorithm)
        self.kid = libtrust_key_id(self._cert.public_key())
        self._x5c = [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()]
        self._lock = threading.Lock()
        self.requests = []
        self.tokens_issued = 0
        self.auth_failures = 0
        self._httpd = None
        self._thread = None
        self.port = None

    # -- lifecycle ---------------------------------------------------------
    def start(self):
        """Bind 127.0.0.1:<free port> and serve in a daemon thread. Returns self."""
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        if self.tls_ca is not None:
            cert, key = self.tls_ca.issue_server("tokenserver")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True,
                                        name="berthtest-tokenserver")
        self._thread.start()
        return self

    def stop(self):
        """Stop serving, join the thread and remove the temp directory."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=10)
            self._httpd = None
        if self.workdir and os.path.isdir(self.workdir):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- properties --------------------------------------------------------
    @property
    def url(self):
        """Base URL, e.g. ``http://127.0.0.1:PORT``."""
        return "%s://127.0.0.1:%d" % ("https" if self.tls_ca else "http", self.port)

    @property
    def realm(self):
        """The token endpoint URL to put in the registry's ``auth.token.realm``."""
        return self.url + "/token"

    def registry_auth_config(self):
        """The ``auth`` section for a docker-registry config (a dict)."""
        return {"token": {"realm": self.realm, "service": self.service,
                          "issuer": self.issuer, "rootcertbundle": self.cert_path}}

    def stats(self):
        """Return a consistent snapshot ``{"requests", "tokens_issued", "auth_failures"}``."""
        with self._lock:
            return {"requests": list(self.requests), "tokens_issued": self.tokens_issued,
                    "auth_failures": self.auth_failures}

    def reset_stats(self):
        """Zero the counters."""
        with self._lock:
            self.requests.clear()
            self.tokens_issued = 0
            self.auth_failures = 0

    # -- tokens ------------------------------------------------------------
    def make_token(self, subject, access, expires_in=None, audience=None):
        """Sign and return a JWT granting ``access`` (list of
        ``{"type","name","actions"}``) to ``subject``; usable directly in tests."""
        now = int(time.time())
        header = {"typ": "JWT", "alg": self.algorithm}
        if self.key_hint in ("both", "kid"):
            header["kid"] = self.kid
        if self.key_hint in ("both", "x5c"):
            header["x5c"] = self._x5c
        claims = {"iss": self.issuer, "sub": subject, "aud": audience or self.service,
                  "exp": now + (expires_in or self.expires_in), "nbf": now - 10, "iat": now,
                  "jti": uuid.uuid4().hex, "access": access}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode())).encode()
        if self.algorithm == "ES256":
            der = self._key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
            r, s = decode_dss_signature(der)
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            sig = self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return signing_input.decode() + "." + b64url(sig)

    def _grant(self, user, scopes):
        access = []
        for scope in scopes:
            try:
                typ, name, actions = parse_scope(scope)
            except ValueError:
                continue
            if user is None:
                granted = ["pull"] if (self.anonymous_pull and typ == "repository"
                                       and "pull" in actions) else []
            elif self.permissions is not None:
                granted = list(self.permissions(user, typ, name, actions))
            else:
                granted = actions
            access.append({"type": typ, "name": name, "actions": granted})
        return access

    def _handle(self, handler, method, path, service, scopes, creds):
        record = {"method": method, "path": path, "service": service,
                  "scopes": list(scopes), "user": creds[0] if creds else None}
        if path != "/token":
            record["status"] = 404
            with self._lock:
                self.requests.append(record)
            return handler._reply(404, {"errors": [{"code": "NOT_FOUND"}]})
        if creds is not None and self.users.get(creds[0]) != creds[1]:
            record["status"] = 401
            with self._lock:
                self.requests.append(record)
                self.auth_failures += 1
            return handler._reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                                    "message": "bad credentials"}]},
                                  [("WWW-Authenticate", 'Basic realm="berthtest"')])
        user = creds[0] if creds else None
        token = self.make_token(user or "", self._grant(user, scopes))
        record["status"] = 200
        with self._lock:
            self.requests.append(record)
            self.tokens_issued += 1
        issued = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        handler._reply(200, {"token": token, "access_token": token,
                             "expires_in": self.expires_in, "issued_at": issued})
