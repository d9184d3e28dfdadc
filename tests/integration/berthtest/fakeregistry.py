"""Registries that misbehave on purpose, for the faults a real registry will not produce.

- :class:`FakeRegistry`  -- a minimal distribution-API server serving an OCI layout's blobs, with an
  injectable ``fault`` hook.
- :class:`RoutingProxy`  -- puts a TokenServer's realm on the registry's own host:port.
- :class:`SameHostRealm` -- stands in for a TokenServer in ``Registry(token_auth=...)`` with that realm.
"""
import hashlib
import http.server
import json
import re
import socket
import ssl
import threading
from pathlib import Path

from .images import MEDIA_TYPES
from .store import hexof

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


class FakeRegistry:
    """A minimal distribution-API server on 127.0.0.1 serving blobs of an OCI layout.

    ``manifests``: {(repo, ref): (bytes, media_type)} served for GET/HEAD /v2/<repo>/manifests/<ref>;
    by-digest lookups also find every blob of the layout (typed by its own mediaType).
    ``fault(handler, method, path) -> bool``: return True after answering a request yourself.
    """

    def __init__(self, layout_dir=None, tls=None):
        """``tls=(cert_path, key_path)``: the port speaks TLS *and* plain http (chosen per connection by
        its first byte), like a hostile server that answers whatever a client tries."""
        self.layout_dir = Path(layout_dir) if layout_dir else None
        self.manifests = {}
        self.fault = None
        self.requests = []
        self.lock = threading.Lock()
        owner = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                owner._handle(self, "GET")

            def do_HEAD(self):
                owner._handle(self, "HEAD")

        ctx = None
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)

        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def finish_request(self, request, client_address):
                if ctx is not None:
                    try:
                        first = request.recv(1, socket.MSG_PEEK)
                    except OSError:
                        return
                    if first == b"\x16":  # a TLS ClientHello
                        try:
                            request = ctx.wrap_socket(request, server_side=True)
                        except (ssl.SSLError, OSError):
                            return
                super().finish_request(request, client_address)

        self.httpd = S(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def add_manifest(self, repo, ref, data, media_type):
        self.manifests[(repo, ref)] = (data, media_type)

    def blob_bytes(self, digest):
        if self.layout_dir is None:
            return None
        p = self.layout_dir / "blobs" / "sha256" / hexof(digest)
        return p.read_bytes() if p.is_file() else None

    @staticmethod
    def reply(h, method, status, body=b"", headers=()):
        h.send_response(status)
        hdrs = dict(headers)
        hdrs.setdefault("Content-Length", str(len(body)))
        for k, v in hdrs.items():
            h.send_header(k, v)
        h.end_headers()
        if method != "HEAD" and body:
            h.wfile.write(body)

    @staticmethod
    def reply_cut(h, data, n, headers=()):
        """Answer 200 announcing all of ``data`` (Content-Length), send only its first ``n`` bytes and
        hang up: a body cut short."""
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        for k, v in dict(headers).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data[:n])
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)

    def _handle(self, h, method):
        path = h.path.split("?", 1)[0]
        with self.lock:
            self.requests.append({"method": method, "path": path, "range": h.headers.get("Range"),
                                  "tls": isinstance(h.connection, ssl.SSLSocket),
                                  "authorization": h.headers.get("Authorization")})
        if self.fault and self.fault(h, method, path):
            return
        if path in ("/v2/", "/v2"):
            return self.reply(h, method, 200, b"{}", {"Content-Type": "application/json"})
        m = re.fullmatch(r"/v2/(.+)/(manifests|blobs)/([^/]+)", path)
        if not m:
            return self.reply(h, method, 404, b'{"errors":[{"code":"NOT_FOUND"}]}')
        repo, kind, ref = m.groups()
        if kind == "manifests":
            if (repo, ref) in self.manifests:
                data, mt = self.manifests[(repo, ref)]
            else:
                data = self.blob_bytes(ref) if DIGEST_RE.fullmatch(ref) else None
                if data is None:
                    return self.reply(h, method, 404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}',
                                      {"Content-Type": "application/json"})
                mt = json.loads(data).get("mediaType", MEDIA_TYPES["oci"]["manifest"])
            dig = "sha256:" + hashlib.sha256(data).hexdigest()
            return self.reply(h, method, 200, data, {"Content-Type": mt, "Docker-Content-Digest": dig})
        data = self.blob_bytes(ref)
        if data is None:
            return self.reply(h, method, 404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}',
                              {"Content-Type": "application/json"})
        rng = h.headers.get("Range")
        if rng and method == "GET":
            start = int(re.match(r"bytes=(\d+)-", rng).group(1))
            part = data[start:]
            return self.reply(h, method, 206, part, {
                "Content-Type": "application/octet-stream",
                "Content-Range": "bytes %d-%d/%d" % (start, len(data) - 1, len(data))})
        return self.reply(h, method, 200, data, {"Content-Type": "application/octet-stream",
                                                 "Docker-Content-Digest": ref})

    def fail_blob_after(self, digest, asked, release, timeout):
        """Fault: a GET of blob ``digest`` sets ``asked``, waits for ``release`` (at most ``timeout``
        seconds), then answers 404 BLOB_UNKNOWN."""
        def fault(h, method, path):
            if method == "GET" and path.endswith("/blobs/" + digest):
                asked.set()
                release.wait(timeout)
                self.reply(h, method, 404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}',
                           {"Content-Type": "application/json"})
                return True
            return False
        self.fault = fault

    def blob_gets(self, digest):
        with self.lock:
            return [r for r in self.requests if r["method"] == "GET" and r["path"].endswith("/blobs/" + digest)]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class RoutingProxy:
    """HTTP reverse proxy on 127.0.0.1: paths under /token go to a TokenServer, the rest to a
    registry. Puts the token realm on the registry's own host:port, where berth may send stored
    credentials over plain http (to a realm on another host it must not)."""

    def __init__(self, token_port):
        import http.client
        self.token_port = token_port
        self.registry_port = None
        owner = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _forward(self):
                port = owner.token_port if self.path.startswith("/token") else owner.registry_port
                n = int(self.headers.get("Content-Length", "0") or 0)
                body = self.rfile.read(n) if n else None
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                c.request(self.command, self.path, body=body, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                c.close()

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = S(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class SameHostRealm:
    """Stands in for a TokenServer in Registry(token_auth=...) with the realm on the router."""

    def __init__(self, ts, router):
        self.ts, self.router = ts, router
        self.port = ts.port
        self.users = ts.users

    def registry_auth_config(self):
        cfg = self.ts.registry_auth_config()
        cfg["token"]["realm"] = "http://%s/token" % self.router.host
        return cfg
