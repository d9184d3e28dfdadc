"""Issue: `berthctl images pull` (fetch only, like `ctr images pull` without unpack), images/content
management, against real registries (Debian's docker-registry), a token server, and a small hostile
registry written here for the faults a real registry will not produce.

Every byte count is measured by CountingProxy, a TCP proxy on 127.0.0.1 between berth and the
registry: it counts the bytes the registry sends and records each HTTP request line (and its Range
header). It can also throttle, so that a pull of a few tens of MiB lasts long enough to be killed,
cancelled or joined by a second caller.
"""
import hashlib
import http.server
import itertools
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from berthtest import stack
from berthtest.cli import inspect
from berthtest.fixtures import *  # noqa: F401,F403
from berthtest.fixtures import TEST_USER, TEST_PASSWORD, require_tools
from berthtest.images import ImageBuilder, File, Dir, random_file_layer, MEDIA_TYPES
from berthtest.registry import Registry
from berthtest.tokenserver import TokenServer
from berthtest.stack import berthctl, busctl, name_pid, wait_for

CONTENT = Path("/var/lib/berth/content")
BLOBS = CONTENT / "blobs" / "sha256"
INGEST = CONTENT / "ingest"
ETC = Path("/etc/berth")
REGISTRIES_CONF = ETC / "registries.conf"
CERTS_D = ETC / "certs.d"

BROKER = "org.berth.Broker1"
BROKER_PATH = "/org/berth/Broker1"
MANAGER = "org.berth.Broker1.Manager"
TRANSFER = "org.berth.Broker1.Transfer"

MiB = 1024 * 1024
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


# ================================================================================================
# helpers: content store, CLI output
# ================================================================================================

def hexof(digest):
    return digest.split(":", 1)[1]


def blob_file(digest):
    return BLOBS / hexof(digest)


def have_blob(digest):
    return blob_file(digest).exists()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def assert_blob_committed(desc):
    """The blob of descriptor ``desc`` is in the store with exactly its size and digest."""
    path = blob_file(desc.digest)
    assert path.is_file(), f"blob {desc.digest} ({desc.media_type}) missing from {BLOBS}"
    assert path.stat().st_size == desc.size, f"{path}: size {path.stat().st_size} != {desc.size}"
    assert sha256_file(path) == desc.digest, f"{path} does not hash to its name"


def ingest_entries_for(digest):
    """Partial downloads of ``digest`` (whatever the ingest key layout, the hex appears in it)."""
    if not INGEST.is_dir():
        return []
    return [p for p in INGEST.iterdir() if hexof(digest) in p.name]


def ingest_data_size(digest):
    """Bytes in the largest regular file of digest's ingest entries (0 if none)."""
    best = 0
    for entry in ingest_entries_for(digest):
        files = [entry] if entry.is_file() else [p for p in entry.rglob("*") if p.is_file()]
        for f in files:
            try:
                best = max(best, f.stat().st_size)
            except FileNotFoundError:
                pass
    return best


def one_error_line(p, command="images pull"):
    """A failed berthctl: non-zero exit, exactly one stderr line `berthctl: <command>: ...`."""
    assert p.returncode != 0, f"expected failure, got success:\n{p.stdout}\n{p.stderr}"
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{p.stderr}"
    assert lines[0].startswith(f"berthctl: {command}: "), lines[0]
    return lines[0]


def pull(ref, *opts, user=None, timeout=240, env=None):
    return berthctl("images", "pull", *opts, ref, user=user, timeout=timeout, env=env)


def pulled(p, ref=None):
    """Digest from the last stdout line `<reference>: <digest>` of a successful pull."""
    assert p.returncode == 0, f"pull failed ({p.returncode}):\nstdout: {p.stdout}\nstderr: {p.stderr}"
    last = p.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"(\S+): (sha256:[0-9a-f]{64})", last.strip())
    assert m, f"last line is not '<reference>: <digest>': {last!r}"
    if ref is not None:
        assert m.group(1) == ref, f"printed reference {m.group(1)!r}, expected {ref!r}"
    return m.group(2)


def bus_json(*args, user=None):
    p = busctl("--json=short", *args, user=user)
    assert p.returncode == 0, f"busctl {args} failed: {p.stderr}"
    return json.loads(p.stdout)


def bus_images():
    """ListImages as {reference: (digest, media_type, size, platforms)}."""
    data = bus_json("call", BROKER, BROKER_PATH, MANAGER, "ListImages")["data"][0]
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in data}


def bus_content():
    """ListContent as {digest: (size, mtime, [references])}."""
    data = bus_json("call", BROKER, BROKER_PATH, MANAGER, "ListContent")["data"][0]
    return {r[0]: (r[1], r[2], r[3]) for r in data}


def _first(d, *keys):
    for k in keys:
        if isinstance(d, dict) and k in d and d[k] not in (None, ""):
            return d[k]
    return None


def cli_images():
    """`berthctl images ls --json` as {reference: digest} (tolerant about the exact key names)."""
    p = berthctl("images", "ls", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    if isinstance(doc, dict):
        doc = _first(doc, "images", "data") or []
    out = {}
    for item in doc:
        ref = _first(item, "reference", "name", "ref")
        dig = _first(item, "digest", "target_digest", "targetDigest")
        if dig is None and isinstance(item.get("target"), dict):
            dig = item["target"].get("digest")
        out[ref] = dig
    return out


def all_digests_in(obj):
    """Every sha256 digest mentioned anywhere in a JSON document."""
    return set(DIGEST_RE.findall(json.dumps(obj)))


def registry_manifest_digest(reg, repo_tag):
    """The digest of the manifest the registry serves, as an independent client computes it."""
    raw = reg.inspect_raw(repo_tag)
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def rm_images(*refs):
    for r in refs:
        berthctl("images", "rm", r)


# ================================================================================================
# helpers: images
# ================================================================================================

def unique_entries(size=8192, name=None):
    """A small layer whose content nobody else uses (so no test sees another test's blobs)."""
    name = name or uuid.uuid4().hex
    return [Dir("data"), File(f"data/{name}", os.urandom(size))]


def build(tmp_path, nlayers=1, media="oci", compression="gzip", size=8192, tag="latest", sub="layout"):
    b = ImageBuilder(tmp_path / sub, media_types=media)
    layers = [b.add_layer(unique_entries(size), compression=compression) for _ in range(nlayers)]
    img = b.add_image(layers, cmd=["/bin/sh"], tag=tag)
    return b, img


def image_blobs(img):
    return [img.manifest, img.config] + list(img.layers)


# ================================================================================================
# CountingProxy: bytes and requests between berth and a registry
# ================================================================================================

class CountingProxy:
    """TCP proxy 127.0.0.1:port -> target; counts downstream bytes, records HTTP requests.

    ``rate`` (bytes/s, None = unlimited) throttles what the registry sends; it can be changed
    while running. ``requests``: dicts {method, path, range, conn}.
    """

    REQ_RE = re.compile(rb"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP/1\.[01]\r\n(.*?)\r\n\r\n", re.S)

    def __init__(self, target_port, target_host="127.0.0.1", rate=None):
        self.target = (target_host, target_port)
        self.rate = rate
        self.lock = threading.Lock()
        self.bytes_down = 0
        self.requests = []
        self.pending = {}            # conn → requests whose response has not fully arrived yet
        self.seq = itertools.count()  # orders request starts and response ends (no clocks)
        self.conns = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def reset(self):
        with self.lock:
            self.bytes_down = 0
            self.requests = []

    def _accept(self):
        n = 0
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.target, timeout=10)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            n += 1
            with self.lock:
                self.conns += [c, u]
            threading.Thread(target=self._up, args=(c, u, n), daemon=True).start()
            threading.Thread(target=self._down, args=(u, c, n), daemon=True).start()

    def _up(self, c, u, n):
        buf = b""
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                buf += data
                while True:
                    m = self.REQ_RE.search(buf)
                    if not m:
                        break
                    hdrs = {}
                    for line in m.group(3).split(b"\r\n"):
                        k, _, v = line.partition(b":")
                        hdrs[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
                    with self.lock:
                        r = {"method": m.group(1).decode(),
                             "path": m.group(2).decode().split("?", 1)[0],
                             "range": hdrs.get("range"), "conn": n, "headers": hdrs,
                             "start": next(self.seq), "end": None}
                        self.requests.append(r)
                        self.pending.setdefault(n, []).append(r)
                    buf = buf[m.end():]
                if len(buf) > 1 << 20:
                    buf = buf[-65536:]
                u.sendall(data)
        except OSError:
            pass
        finally:
            for s in (u, c):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _response_bytes(self, n, state, data):
        """Follow responses on connection n (Content-Length framing, in request order) and stamp
        each request's "end" when its whole response has passed."""
        state["buf"] += data
        while True:
            if state["left"] is None:
                head_end = state["buf"].find(b"\r\n\r\n")
                if head_end < 0:
                    return
                head = state["buf"][:head_end].decode("latin-1").lower()
                state["buf"] = state["buf"][head_end + 4:]
                m = re.search(r"^content-length:\s*(\d+)", head, re.M)
                with self.lock:
                    q = self.pending.get(n) or [None]
                    is_head = q[0] is not None and q[0]["method"] == "HEAD"
                state["left"] = 0 if is_head or not m else int(m.group(1))
            take = min(state["left"], len(state["buf"]))
            state["left"] -= take
            state["buf"] = state["buf"][take:]
            if state["left"] > 0:
                return
            state["left"] = None
            with self.lock:
                q = self.pending.get(n)
                if q:
                    q.pop(0)["end"] = next(self.seq)

    def _down(self, u, c, n):
        state = {"buf": b"", "left": None}
        try:
            while True:
                rate = self.rate
                data = u.recv(65536 if not rate else max(4096, min(65536, rate // 20)))
                if not data:
                    break
                c.sendall(data)
                self._response_bytes(n, state, data)
                with self.lock:
                    self.bytes_down += len(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            for s in (u, c):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def blob_gets(self, digest=None):
        with self.lock:
            return [r for r in self.requests if r["method"] == "GET" and "/blobs/" in r["path"]
                    and (digest is None or r["path"].endswith(digest))]

    def max_concurrent_blob_gets(self):
        """Most blob GETs whose responses were in flight at the same moment (by event order)."""
        events = []
        for r in self.blob_gets():
            assert r["end"] is not None, f"blob response never completed: {r['path']}"
            events += [(r["start"], 1), (r["end"], -1)]
        best = cur = 0
        for _, d in sorted(events):
            cur += d
            best = max(best, cur)
        return best

    def manifest_requests(self):
        with self.lock:
            return [r for r in self.requests if "/manifests/" in r["path"]]

    def close(self):
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            for s in self.conns:
                try:
                    s.close()
                except OSError:
                    pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ================================================================================================
# FakeRegistry: serves an OCI layout, with injectable faults
# ================================================================================================

class FakeRegistry:
    """A minimal distribution-API server on 127.0.0.1 serving blobs of an OCI layout.

    ``manifests``: {(repo, ref): (bytes, media_type)} served for GET/HEAD /v2/<repo>/manifests/<ref>;
    by-digest lookups also find every blob of the layout (typed by its own mediaType).
    ``fault(handler, method, path) -> bool``: return True after answering a request yourself.
    """

    def __init__(self, layout_dir=None):
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

        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

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
            self.requests.append({"method": method, "path": path, "range": h.headers.get("Range")})
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


@pytest.fixture
def fake_registry():
    regs = []

    def make(layout_dir=None):
        r = FakeRegistry(layout_dir)
        regs.append(r)
        return r
    yield make
    for r in regs:
        r.close()


@pytest.fixture
def proxies():
    made = []

    def make(target_port, rate=None):
        p = CountingProxy(target_port, rate=rate)
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


# ================================================================================================
# /etc/berth configuration, restored at teardown
# ================================================================================================

class BerthConfig:
    def __init__(self):
        self.groups = {}
        self.fetcher = {}
        self.created_cert_dirs = []

    def registry(self, host, **kv):
        g = self.groups.setdefault(host, {})
        g.update(kv)
        self.flush()

    def fetcher_settings(self, **kv):
        self.fetcher.update(kv)
        self.flush()

    def flush(self):
        ETC.mkdir(mode=0o755, exist_ok=True)
        out = []
        if self.fetcher:
            out.append("[fetcher]")
            out += ["%s=%s" % (k.replace("_", "-"), v) for k, v in self.fetcher.items()]
            out.append("")
        for host, kv in self.groups.items():
            out.append('[registry "%s"]' % host)
            for k, v in kv.items():
                if isinstance(v, bool):
                    v = "true" if v else "false"
                elif isinstance(v, (list, tuple)):
                    v = ";".join(v)
                out.append("%s=%s" % (k.replace("_", "-"), v))
            out.append("")
        tmp = REGISTRIES_CONF.with_suffix(".tmp")
        tmp.write_text("\n".join(out))
        os.chmod(tmp, 0o644)
        os.replace(tmp, REGISTRIES_CONF)

    def install_certs(self, reg, ca=True, client=False):
        """/etc/berth/certs.d/HOST/{ca.crt,client.cert,client.key} for a TLS test registry."""
        d = CERTS_D / reg.host
        CERTS_D.mkdir(parents=True, mode=0o755, exist_ok=True)
        d.mkdir(mode=0o755, exist_ok=True)
        self.created_cert_dirs.append(d)
        if ca:
            shutil.copyfile(reg.ca_path, d / "ca.crt")
            os.chmod(d / "ca.crt", 0o644)
        if client:
            shutil.copyfile(reg.client_cert_path, d / "client.cert")
            os.chmod(d / "client.cert", 0o644)
            shutil.copyfile(reg.client_key_path, d / "client.key")
            shutil.chown(d / "client.key", "berth-fetcher", "berth-fetcher")
            os.chmod(d / "client.key", 0o600)
        return d


@pytest.fixture
def berth_config():
    saved = REGISTRIES_CONF.read_bytes() if REGISTRIES_CONF.exists() else None
    certs_existed = CERTS_D.exists()
    cfg = BerthConfig()
    yield cfg
    for d in cfg.created_cert_dirs:
        shutil.rmtree(d, ignore_errors=True)
    if not certs_existed and CERTS_D.exists() and not any(CERTS_D.iterdir()):
        CERTS_D.rmdir()
    if saved is None:
        REGISTRIES_CONF.unlink(missing_ok=True)
    else:
        REGISTRIES_CONF.write_bytes(saved)


@pytest.fixture
def logins():
    """Registries logged in to during the test; logged out at teardown."""
    regs = []
    yield regs
    for r in regs:
        berthctl("logout", r)


def login(registry_host, user, password, as_user=None):
    return stack.run([str(stack.BERTHCTL), "--no-ask-password", "login", "-u", user, "--password-stdin",
                      registry_host], user=as_user, input=password + "\n", timeout=120)


# ================================================================================================
# basic pulls
# ================================================================================================

def test_pull_by_tag_plain_loopback_registry(registry, tmp_path):
    b, img = build(tmp_path, nlayers=2)
    registry.push(b.layout_dir, "latest", "test/bytag:v1")
    ref = f"{registry.host}/test/bytag:v1"
    digest = pulled(pull(ref), ref)
    # One digest, three witnesses: what we built, what the registry serves, what berth reports.
    assert digest == img.manifest.digest
    assert digest == registry_manifest_digest(registry, "test/bytag:v1")
    assert cli_images().get(ref) == digest
    assert bus_images()[ref][0] == digest
    for d in image_blobs(img):
        assert_blob_committed(d)
    rm_images(ref)


def test_pull_by_digest(registry, tmp_path):
    b, img = build(tmp_path)
    registry.push(b.layout_dir, "latest", "test/bydigest:v1")
    ref = f"{registry.host}/test/bydigest@{img.manifest.digest}"
    digest = pulled(pull(ref))
    assert digest == img.manifest.digest
    assert bus_images()[ref][0] == img.manifest.digest
    for d in image_blobs(img):
        assert_blob_committed(d)
    rm_images(ref)


def test_pull_no_unpack_is_fetch_only(registry, tmp_path):
    """--no-unpack (PullImage flag bit 1) fetches like `ctr content fetch`; a later plain pull
    unpacks without fetching again."""
    b, img = build(tmp_path, nlayers=2)
    registry.push(b.layout_dir, "latest", "test/nounpack:v1")
    ref = f"{registry.host}/test/nounpack:v1"
    assert pulled(pull(ref, "--no-unpack")) == img.manifest.digest
    for d in image_blobs(img):
        assert_blob_committed(d)
    plats = inspect(ref)["platforms"]
    assert [p["unpacked"] for p in plats] == [False], plats
    assert pulled(pull(ref)) == img.manifest.digest
    assert [p["unpacked"] for p in inspect(ref)["platforms"]] == [True]
    rm_images(ref)


def test_pull_inspect_shows_what_was_built(registry, tmp_path):
    b, img = build(tmp_path, nlayers=2)
    registry.push(b.layout_dir, "latest", "test/inspect:v1")
    ref = f"{registry.host}/test/inspect:v1"
    pulled(pull(ref))
    doc = inspect(ref)
    seen = all_digests_in(doc)
    assert img.manifest.digest in seen and img.config.digest in seen
    for l in img.layers:
        assert l.digest in seen, f"layer {l.digest} not in inspect output"
        assert l.diff_id in seen, f"diff_id {l.diff_id} not in inspect output"
    assert "/bin/sh" in json.dumps(doc)  # the image config's Cmd
    rm_images(ref)


def test_images_ls_size_and_platform(registry, tmp_path):
    b, img = build(tmp_path, nlayers=2, size=100000)
    registry.push(b.layout_dir, "latest", "test/lssize:v1")
    ref = f"{registry.host}/test/lssize:v1"
    pulled(pull(ref))
    digest, mt, size, platforms = bus_images()[ref]
    assert mt == MEDIA_TYPES["oci"]["manifest"]
    assert size == sum(d.size for d in image_blobs(img))
    if os.uname().machine == "x86_64":
        assert platforms == "linux/amd64"
    rm_images(ref)


# ================================================================================================
# references
# ================================================================================================

def test_short_name_is_normalised_to_docker_io(registry, berth_config, tmp_path):
    """`busybox` means docker.io/library/busybox:latest; docker.io is mirrored to the local
    registry (mirrors-resolve so the tag resolves there too), so no Internet is needed."""
    b, img = build(tmp_path)
    registry.push(b.layout_dir, "latest", "library/busybox:latest")
    berth_config.registry(registry.host, plain_http=True)
    berth_config.registry("docker.io", mirrors=[f"http://{registry.host}"], mirrors_resolve=True)
    p = pull("busybox")
    digest = pulled(p, "docker.io/library/busybox:latest")
    assert digest == img.manifest.digest
    assert bus_images()["docker.io/library/busybox:latest"][0] == digest
    # The same image under other spellings is the same name.
    for spelling in ("library/busybox", "docker.io/library/busybox:latest", "docker.io/busybox"):
        assert pulled(pull(spelling), "docker.io/library/busybox:latest") == digest
    # Images of other origins (a localhost/busybox imported on the shared stack) are not ours to judge.
    assert [r for r in bus_images() if "busybox" in r and not r.startswith("localhost/")] == \
        ["docker.io/library/busybox:latest"]
    rm_images("docker.io/library/busybox:latest")


@pytest.mark.parametrize("bad", [
    "Upper/Case",                       # uppercase repository
    "127.0.0.1:5000/a//b",              # empty path component
    "repo:tag:extra",                   # two tags
    "repo@sha256:1234",                 # short digest
    "repo@md5:" + "0" * 32,             # unsupported algorithm
    "repo:" + "t" * 129,                # tag longer than 128
    "_leading/underscore",              # invalid first character
    "repo:tag with space",
    "",
])
def test_malformed_reference_one_clear_error(bad):
    before = set(bus_images())
    p = pull(bad)
    line = one_error_line(p)
    assert "reference" in line.lower() or "invalid" in line.lower(), line
    assert p.stdout.strip() == ""
    assert set(bus_images()) == before


def test_unknown_repository_404(registry):
    ref = f"{registry.host}/no/such-repo:latest"
    line = one_error_line(pull(ref))
    assert "no/such-repo" in line and ("not found" in line.lower() or "unknown" in line.lower()), line
    assert ref not in bus_images()


def test_unknown_tag_404(registry, tmp_path):
    b, img = build(tmp_path)
    registry.push(b.layout_dir, "latest", "test/tag404:v1")
    line = one_error_line(pull(f"{registry.host}/test/tag404:nope"))
    assert "nope" in line and ("not found" in line.lower() or "unknown" in line.lower()), line


def test_unknown_digest_404(registry, tmp_path):
    b, img = build(tmp_path)
    registry.push(b.layout_dir, "latest", "test/dig404:v1")
    missing = "sha256:" + hashlib.sha256(b"nothing").hexdigest()
    line = one_error_line(pull(f"{registry.host}/test/dig404@{missing}"))
    assert ("not found" in line.lower() or "unknown" in line.lower()), line
    assert not have_blob(missing)


# ================================================================================================
# formats: Docker schema 2, OCI, compressions, multi-arch
# ================================================================================================

@pytest.mark.parametrize("compressions", [("gzip",), ("gzip", "none")], ids=["gzip", "gzip+uncompressed"])
def test_docker_schema2_image(registry, tmp_path, compressions):
    """Docker schema 2: layer types ...rootfs.diff.tar.gzip and (uncompressed) ...rootfs.diff.tar."""
    b = ImageBuilder(tmp_path / "layout", media_types="docker")
    layers = [b.add_layer(unique_entries(), compression=c) for c in compressions]
    img = b.add_image(layers, tag="latest")
    registry.push(b.layout_dir, "latest", "test/docker:v1")
    assert json.loads(registry.inspect_raw("test/docker:v1"))["mediaType"] == MEDIA_TYPES["docker"]["manifest"]
    ref = f"{registry.host}/test/docker:v1"
    assert pulled(pull(ref)) == img.manifest.digest
    assert bus_images()[ref][1] == MEDIA_TYPES["docker"]["manifest"]
    for d in image_blobs(img):
        assert_blob_committed(d)
    rm_images(ref)


def test_oci_image_gzip_zstd_uncompressed_layers(registry, tmp_path):
    require_tools("zstd")
    b = ImageBuilder(tmp_path / "layout")
    layers = [b.add_layer(unique_entries(50000), compression=c) for c in ("gzip", "zstd", "none")]
    img = b.add_image(layers, tag="latest")
    registry.push(b.layout_dir, "latest", "test/compress:v1")
    ref = f"{registry.host}/test/compress:v1"
    assert pulled(pull(ref)) == img.manifest.digest
    assert bus_images()[ref][1] == MEDIA_TYPES["oci"]["manifest"]
    for d in image_blobs(img):
        assert_blob_committed(d)
    # Fetch only: the blobs are the compressed bytes as served, no unpacking.
    assert blob_file(layers[1].digest).read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd magic
    assert blob_file(layers[0].digest).read_bytes()[:2] == b"\x1f\x8b"          # gzip magic
    rm_images(ref)


def _multi_arch(tmp_path, media):
    b = ImageBuilder(tmp_path / "layout", media_types=media)
    per = {plat: [b.add_layer(unique_entries())] for plat in ("linux/amd64", "linux/arm64/v8", "linux/s390x")}
    idx = b.multi_arch_index(per, tag="multi")
    return b, idx, {f"{i.platform['os']}/{i.platform['architecture']}": i for i in idx.images}


@pytest.fixture(params=["oci", "docker"])
def multi_arch(request, registry, tmp_path):
    media = request.param
    b, idx, by_plat = _multi_arch(tmp_path, media)
    repo = f"test/multi-{media}-{uuid.uuid4().hex[:8]}"
    registry.push_all(b.layout_dir, "multi", f"{repo}:v1")
    ref = f"{registry.host}/{repo}:v1"
    yield ref, idx, by_plat, media
    rm_images(ref)


def test_multi_arch_default_platform_is_this_machine(multi_arch):
    if os.uname().machine != "x86_64":
        pytest.skip("expects an amd64 machine")
    ref, idx, by_plat, media = multi_arch
    digest = pulled(pull(ref))
    assert digest == idx.descriptor.digest  # the name points at the index
    assert bus_images()[ref][1] == MEDIA_TYPES[media]["index"]
    assert bus_images()[ref][3] == "linux/amd64"
    amd, arm = by_plat["linux/amd64"], by_plat["linux/arm64"]
    for d in image_blobs(amd):
        assert_blob_committed(d)
    for d in [arm.manifest, arm.config] + arm.layers:
        assert not have_blob(d.digest), f"arm64 blob {d.digest} fetched for a linux/amd64 pull"


def test_multi_arch_platform_option(multi_arch):
    ref, idx, by_plat, media = multi_arch
    pulled(pull(ref, "--platform", "linux/arm64"))
    arm, s390 = by_plat["linux/arm64"], by_plat["linux/s390x"]
    for d in image_blobs(arm):
        assert_blob_committed(d)
    for d in image_blobs(s390):
        assert not have_blob(d.digest)
    assert "linux/arm64" in bus_images()[ref][3]
    assert arm.manifest.digest in all_digests_in(inspect(ref))


def test_multi_arch_all_platforms(multi_arch):
    ref, idx, by_plat, media = multi_arch
    pulled(pull(ref, "--all-platforms"))
    for img in by_plat.values():
        for d in image_blobs(img):
            assert_blob_committed(d)
    plats = set(bus_images()[ref][3].split(","))
    assert {"linux/amd64", "linux/arm64/v8", "linux/s390x"} <= plats or \
        {"linux/amd64", "linux/arm64", "linux/s390x"} <= plats, plats


def test_multi_arch_missing_platform_lists_available(multi_arch):
    ref, idx, by_plat, media = multi_arch
    line = one_error_line(pull(ref, "--platform", "linux/riscv64"))
    assert "linux/riscv64" in line, line
    for avail in ("linux/amd64", "linux/arm64", "linux/s390x"):
        assert avail in line, f"{avail} not listed as available: {line}"
    assert ref not in bus_images()
    for img in by_plat.values():
        for d in img.layers:
            assert not have_blob(d.digest)


def test_platform_and_all_platforms_are_exclusive(registry):
    p = pull(f"{registry.host}/x/y:z", "--platform", "linux/amd64", "--all-platforms")
    line = one_error_line(p)
    assert "--platform" in line and "--all-platforms" in line, line


def test_unknown_manifest_media_type_clear_error(fake_registry):
    fr = fake_registry()
    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.example.thing+json"}).encode()
    fr.add_manifest("odd/type", "v1", body, "application/vnd.example.thing+json")
    line = one_error_line(pull(f"{fr.host}/odd/type:v1"))
    assert "application/vnd.example.thing+json" in line or "media type" in line.lower(), line
    assert f"{fr.host}/odd/type:v1" not in bus_images()


# ================================================================================================
# TLS
# ================================================================================================

def test_tls_registry_with_ca_in_certs_d(tls_registry, berth_config, tmp_path):
    b, img = build(tmp_path)
    tls_registry.push(b.layout_dir, "latest", "test/tls:v1")
    berth_config.install_certs(tls_registry)
    ref = f"{tls_registry.host}/test/tls:v1"
    assert pulled(pull(ref)) == img.manifest.digest
    for d in image_blobs(img):
        assert_blob_committed(d)
    rm_images(ref)


def test_tls_registry_without_ca_fails_cleanly(tls_registry, berth_config, tmp_path):
    b, img = build(tmp_path)
    tls_registry.push(b.layout_dir, "latest", "test/tlsnoca:v1")
    line = one_error_line(pull(f"{tls_registry.host}/test/tlsnoca:v1"))
    assert re.search(r"tls|ssl|certificate", line, re.I), line
    for d in image_blobs(img):
        assert not have_blob(d.digest)


def test_tls_skip_verify(tls_registry, berth_config, tmp_path):
    b, img = build(tmp_path)
    tls_registry.push(b.layout_dir, "latest", "test/tlsskip:v1")
    berth_config.registry(tls_registry.host, skip_verify=True)
    ref = f"{tls_registry.host}/test/tlsskip:v1"
    assert pulled(pull(ref)) == img.manifest.digest
    rm_images(ref)


def test_client_cert_registry(berth_config, tmp_path):
    require_tools("docker-registry", "skopeo")
    with Registry(tls=True, client_auth=True) as reg:
        b, img = build(tmp_path)
        reg.push(b.layout_dir, "latest", "test/mtls:v1")
        ref = f"{reg.host}/test/mtls:v1"
        # CA only: the registry refuses the handshake.
        berth_config.install_certs(reg, ca=True, client=False)
        line = one_error_line(pull(ref))
        assert re.search(r"tls|ssl|certificate|handshake", line, re.I), line
        assert not have_blob(img.config.digest)
        # With the client certificate.
        berth_config.install_certs(reg, ca=True, client=True)
        assert pulled(pull(ref)) == img.manifest.digest
        for d in image_blobs(img):
            assert_blob_committed(d)
        rm_images(ref)


# ================================================================================================
# authentication
# ================================================================================================

def test_basic_auth_login_pull_logout(basic_auth_registry, logins, tmp_path):
    reg = basic_auth_registry
    b, img = build(tmp_path)
    reg.push(b.layout_dir, "latest", "test/basic:v1")
    ref = f"{reg.host}/test/basic:v1"

    line = one_error_line(pull(ref))
    assert re.search(r"auth|unauthori[sz]ed|denied|credentials", line, re.I), line
    assert not have_blob(img.config.digest)

    p = login(reg.host, TEST_USER, "wrong-password")
    assert p.returncode != 0, "login with a wrong password succeeded"
    one_error_line(p, "login")

    logins.append(reg.host)
    p = login(reg.host, TEST_USER, TEST_PASSWORD)
    assert p.returncode == 0, p.stderr
    # The secret must not be world-readable anywhere berth keeps it.
    cfg = Path("/var/lib/berth/fetcher/config.json")
    assert cfg.exists()
    assert cfg.stat().st_mode & 0o077 == 0
    assert TEST_PASSWORD not in p.stdout + p.stderr

    assert pulled(pull(ref)) == img.manifest.digest
    for d in image_blobs(img):
        assert_blob_committed(d)
    rm_images(ref)

    assert berthctl("logout", reg.host).returncode == 0
    line = one_error_line(pull(ref))
    assert re.search(r"auth|unauthori[sz]ed|denied|credentials", line, re.I), line


def test_login_requires_admin(basic_auth_registry, member):
    p = login(basic_auth_registry.host, TEST_USER, TEST_PASSWORD, as_user=member)
    line = one_error_line(p, "login")
    assert "permission denied" in line


def test_token_auth_anonymous_pull(tmp_path):
    require_tools("docker-registry", "skopeo")
    with TokenServer(users={TEST_USER: TEST_PASSWORD}, anonymous_pull=True) as ts, \
            Registry(token_auth=ts) as reg:
        b, img = build(tmp_path)
        reg.push(b.layout_dir, "latest", "test/anon:v1")
        ts.reset_stats()
        ref = f"{reg.host}/test/anon:v1"
        assert pulled(pull(ref)) == img.manifest.digest
        st = ts.stats()
        assert st["tokens_issued"] >= 1
        assert all(r["user"] is None for r in st["requests"]), st["requests"]
        assert any("repository:test/anon:pull" in s for r in st["requests"] for s in r["scopes"]), st["requests"]
        for d in image_blobs(img):
            assert_blob_committed(d)
        rm_images(ref)


def test_token_auth_with_credentials(logins, tmp_path):
    """Realm on the registry's own host:port (via RoutingProxy): stored credentials are used."""
    require_tools("docker-registry", "skopeo")
    with TokenServer(users={TEST_USER: TEST_PASSWORD}) as ts:
        router = RoutingProxy(ts.port)
        try:
            with Registry(token_auth=SameHostRealm(ts, router)) as reg:
                router.registry_port = reg.port
                b, img = build(tmp_path)
                reg.push(b.layout_dir, "latest", "test/tok:v1")
                ref = f"{router.host}/test/tok:v1"
                line = one_error_line(pull(ref))
                assert re.search(r"auth|unauthori[sz]ed|denied|credentials|login", line, re.I), line
                assert not have_blob(img.config.digest)

                logins.append(router.host)
                ts.reset_stats()
                p = login(router.host, TEST_USER, "wrong-password")
                one_error_line(p, "login")
                assert ts.stats()["auth_failures"] >= 1, "login did not check the password with the token server"

                ts.reset_stats()
                p = login(router.host, TEST_USER, TEST_PASSWORD)
                assert p.returncode == 0, p.stderr
                assert any(r["user"] == TEST_USER and r["status"] == 200 for r in ts.stats()["requests"])

                ts.reset_stats()
                assert pulled(pull(ref)) == img.manifest.digest
                st = ts.stats()
                assert any(r["user"] == TEST_USER and r["status"] == 200 and
                           "repository:test/tok:pull" in r["scopes"] for r in st["requests"]), st["requests"]
                for d in image_blobs(img):
                    assert_blob_committed(d)
                rm_images(ref)
        finally:
            router.close()


def test_token_login_refused_when_credentials_cannot_be_checked(logins):
    """Realm on another host over plain http: berth must not send the password there
    (CVE-2020-15157), so it cannot verify it either; Login must then fail, not store unverified
    credentials and report success."""
    require_tools("docker-registry")
    with TokenServer(users={TEST_USER: TEST_PASSWORD}) as ts, Registry(token_auth=ts) as reg:
        logins.append(reg.host)
        ts.reset_stats()
        p = login(reg.host, TEST_USER, "wrong-password")
        assert all(r["user"] is None for r in ts.stats()["requests"]), "password sent to a plain-http foreign realm"
        assert p.returncode != 0, "login 'succeeded' without the password being checked by anyone"


def test_401_without_usable_challenge(fake_registry, tmp_path):
    b, img = build(tmp_path)
    fr = fake_registry(b.layout_dir)

    def no_challenge(h, method, path):
        FakeRegistry.reply(h, method, 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                           {"Content-Type": "application/json"})
        return True
    fr.fault = no_challenge
    line = one_error_line(pull(f"{fr.host}/test/nochal@{img.manifest.digest}"))
    assert re.search(r"auth|challenge|unauthori[sz]ed", line, re.I), line
    assert not have_blob(img.manifest.digest)


def test_registry_error_text_cannot_drive_the_terminal(fake_registry, tmp_path):
    """A registry's error message is quoted to the user; escape sequences in it must not reach the
    terminal (retitling it, moving the cursor, faking other output)."""
    b, img = build(tmp_path)
    fr = fake_registry(b.layout_dir)
    evil = "gone\x1b]0;pwned\x07\x1b[2J\rfake line"

    def hostile(h, method, path):
        body = json.dumps({"errors": [{"code": "DENIED", "message": evil}]}).encode()
        FakeRegistry.reply(h, method, 403, body, {"Content-Type": "application/json"})
        return True
    fr.fault = hostile
    p = pull(f"{fr.host}/test/evil@{img.manifest.digest}")
    assert p.returncode != 0
    assert "gone" in p.stderr, p.stderr  # the message is still shown…
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", p.stderr), repr(p.stderr)  # …but no control bytes


# ================================================================================================
# mirrors
# ================================================================================================

def test_mirror_used_when_up(registry, berth_config, proxies, tmp_path):
    require_tools("docker-registry")
    b, img = build(tmp_path, nlayers=2)
    registry.push(b.layout_dir, "latest", "test/mirrored:v1")
    with Registry() as mirror:
        mirror.push(b.layout_dir, "latest", "test/mirrored:v1")
        up, mp = proxies(registry.port), proxies(mirror.port)
        berth_config.registry(up.host, plain_http=True, mirrors=[f"http://{mp.host}"])
        berth_config.registry(mp.host, plain_http=True)
        ref = f"{up.host}/test/mirrored:v1"
        assert pulled(pull(ref)) == img.manifest.digest
        for l in img.layers:
            assert len(mp.blob_gets(l.digest)) == 1, mp.requests
            assert up.blob_gets(l.digest) == [], up.requests
        for d in image_blobs(img):
            assert_blob_committed(d)
        rm_images(ref)


def test_mirror_down_falls_back_to_upstream(registry, berth_config, proxies, tmp_path):
    b, img = build(tmp_path, nlayers=2)
    registry.push(b.layout_dir, "latest", "test/mirrordown:v1")
    up = proxies(registry.port)
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
    dead_host = "127.0.0.1:%d" % dead.getsockname()[1]
    try:
        berth_config.registry(up.host, plain_http=True, mirrors=[f"http://{dead_host}"])
        ref = f"{up.host}/test/mirrordown:v1"
        assert pulled(pull(ref)) == img.manifest.digest
        for l in img.layers:
            assert len(up.blob_gets(l.digest)) == 1, up.requests
        for d in image_blobs(img):
            assert_blob_committed(d)
        rm_images(ref)
    finally:
        dead.close()


def test_mirror_without_the_blob_falls_back(registry, berth_config, proxies, tmp_path):
    require_tools("docker-registry")
    b, img = build(tmp_path)
    registry.push(b.layout_dir, "latest", "test/mirrorempty:v1")
    with Registry() as mirror:  # up, but empty: 404 for everything
        up, mp = proxies(registry.port), proxies(mirror.port)
        berth_config.registry(up.host, plain_http=True, mirrors=[f"http://{mp.host}"])
        berth_config.registry(mp.host, plain_http=True)
        ref = f"{up.host}/test/mirrorempty:v1"
        assert pulled(pull(ref)) == img.manifest.digest
        assert len(mp.blob_gets(img.layers[0].digest)) >= 1, "the mirror was not tried first"
        assert len(up.blob_gets(img.layers[0].digest)) == 1
        rm_images(ref)


# ================================================================================================
# hostile or broken registries: verification, limits
# ================================================================================================

def test_corrupted_blob_fails_and_leaves_nothing(registry, tmp_path):
    b, img = build(tmp_path, size=200000)
    registry.push(b.layout_dir, "latest", "test/corrupt:v1")
    layer = img.layers[0]
    registry.corrupt_blob(layer.digest)
    ref = f"{registry.host}/test/corrupt:v1"
    line = one_error_line(pull(ref))
    assert re.search(r"digest|verif", line, re.I), line
    assert layer.digest in line or hexof(layer.digest)[:12] in line, line
    assert not have_blob(layer.digest)
    bad = sha256_file(registry.blob_path(layer.digest))
    assert not have_blob(bad)
    assert ingest_entries_for(layer.digest) == [], "a verified-bad download was kept for resume"
    assert ref not in bus_images()


def test_manifest_not_matching_its_digest(registry, tmp_path):
    """The registry's stored manifest is altered (valid JSON, one hex digit of a layer digest
    changed): by tag the Docker-Content-Digest disagrees with the bytes, by digest the bytes do not
    hash to the digest asked for. Both refused; no manifest stored under either digest."""
    b, img = build(tmp_path)
    registry.push(b.layout_dir, "latest", "test/badman:v1")
    path = Path(registry.blob_path(img.manifest.digest))
    data = path.read_bytes()
    h = hexof(img.layers[0].digest)
    swapped = h[:10] + ("0" if h[10] != "0" else "1") + h[11:]
    path.write_bytes(data.replace(h.encode(), swapped.encode()))
    bad = sha256_file(path)
    for ref in (f"{registry.host}/test/badman@{img.manifest.digest}", f"{registry.host}/test/badman:v1"):
        line = one_error_line(pull(ref))
        assert re.search(r"digest|match|verif", line, re.I), line
        assert not have_blob(img.manifest.digest)
        assert not have_blob(bad)


def test_truncated_blob_body(fake_registry, berth_config, tmp_path):
    b, img = build(tmp_path, size=300000)
    fr = fake_registry(b.layout_dir)
    layer = img.layers[0]
    berth_config.registry(fr.host, plain_http=True)
    berth_config.fetcher_settings(retries=1)

    def truncate(h, method, path):
        if method == "GET" and path.endswith("/blobs/" + layer.digest):
            data = fr.blob_bytes(layer.digest)
            FakeRegistry.reply_cut(h, data, len(data) // 2, {"Content-Type": "application/octet-stream"})
            return True
        return False
    fr.fault = truncate
    ref = f"{fr.host}/test/trunc@{img.manifest.digest}"
    line = one_error_line(pull(ref))
    assert hexof(layer.digest)[:12] in line or "bytes" in line, line
    assert not have_blob(layer.digest)
    assert len(fr.blob_gets(layer.digest)) == 2, "retries=1 means two attempts"
    assert ref not in bus_images()


def test_retry_after_503_and_resume_after_short_body(fake_registry, berth_config, tmp_path):
    b, img = build(tmp_path, size=400000)
    fr = fake_registry(b.layout_dir)
    layer = img.layers[0]
    berth_config.registry(fr.host, plain_http=True)
    berth_config.fetcher_settings(retries=3)
    calls = {"n": 0}

    def flaky(h, method, path):
        if method != "GET" or not path.endswith("/blobs/" + layer.digest):
            return False
        calls["n"] += 1
        if calls["n"] == 1:
            FakeRegistry.reply(h, method, 503, b"busy", {"Retry-After": "1"})
            return True
        if calls["n"] == 2:
            FakeRegistry.reply_cut(h, fr.blob_bytes(layer.digest), 100000)
            return True
        return False
    fr.fault = flaky
    ref = f"{fr.host}/test/flaky@{img.manifest.digest}"
    assert pulled(pull(ref)) == img.manifest.digest
    assert_blob_committed(layer)
    gets = fr.blob_gets(layer.digest)
    assert len(gets) == 3, gets
    assert gets[2]["range"] == "bytes=100000-", f"third attempt should resume: {gets}"
    rm_images(ref)


def test_resume_falls_back_when_the_server_ignores_range(fake_registry, berth_config, tmp_path):
    """A registry that answers a Range request with 200 and the whole blob: the fetcher must start
    the blob over (not append the full body to the partial one) and still verify it."""
    b, img = build(tmp_path, size=400000)
    fr = fake_registry(b.layout_dir)
    layer = img.layers[0]
    berth_config.registry(fr.host, plain_http=True)
    berth_config.fetcher_settings(retries=3)
    calls = {"n": 0}

    def no_ranges(h, method, path):
        if method != "GET" or not path.endswith("/blobs/" + layer.digest):
            return False
        calls["n"] += 1
        data = fr.blob_bytes(layer.digest)
        # Always 200, never 206, whatever the Range header says.
        if calls["n"] == 1:
            FakeRegistry.reply_cut(h, data, 100000)
        else:
            FakeRegistry.reply(h, method, 200, data)
        return True
    fr.fault = no_ranges
    ref = f"{fr.host}/test/norange@{img.manifest.digest}"
    assert pulled(pull(ref)) == img.manifest.digest
    assert_blob_committed(layer)
    gets = fr.blob_gets(layer.digest)
    assert len(gets) == 2, gets
    assert gets[1]["range"] == "bytes=100000-", f"the retry should have asked to resume: {gets}"
    rm_images(ref)


def test_stalled_transfer_ends_with_a_stall_error(fake_registry, berth_config, tmp_path):
    """A registry that sends part of a blob and then nothing: the stall timeout (no bytes for N
    seconds, not a total timeout) ends the pull with a message naming it; the partial data stays
    for a later resume."""
    b, img = build(tmp_path, size=400000)
    fr = fake_registry(b.layout_dir)
    layer = img.layers[0]
    berth_config.registry(fr.host, plain_http=True)
    berth_config.fetcher_settings(retries=0, stall_timeout_sec=5)
    release = threading.Event()

    def stall(h, method, path):
        if method != "GET" or not path.endswith("/blobs/" + layer.digest):
            return False
        data = fr.blob_bytes(layer.digest)
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data[:50000])
        h.wfile.flush()
        release.wait(120)  # hold the connection open, silent
        h.close_connection = True
        return True
    fr.fault = stall
    ref = f"{fr.host}/test/stall@{img.manifest.digest}"
    try:
        p = pull(ref)
    finally:
        release.set()
    assert p.returncode != 0
    line = p.stderr.strip().splitlines()[-1]
    assert "stalled for 5 s" in line, p.stderr
    assert not have_blob(layer.digest)
    assert ingest_data_size(layer.digest) == 50000, "the bytes received before the stall were not kept"


def test_huge_manifest_refused(fake_registry, tmp_path):
    b, img = build(tmp_path)
    fr = fake_registry(b.layout_dir)
    m = dict(img.manifest_json)
    m["annotations"] = {"pad": "x" * (5 * MiB)}
    data = json.dumps(m).encode()
    assert len(data) > 4 * MiB
    fr.add_manifest("test/huge", "v1", data, MEDIA_TYPES["oci"]["manifest"])
    line = one_error_line(pull(f"{fr.host}/test/huge:v1"))
    assert re.search(r"limit|large|size|exceed|more than|more bytes|allowed", line, re.I), line
    assert not have_blob("sha256:" + hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize("body", [
    b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {',
    b'[1, 2, 3]',
    b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", '
    b'"config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:../../etc/passwd", '
    b'"size": 2}, "layers": []}',
    b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "x":' + b'[' * 5000
    + b']' * 5000 + b'}',
], ids=["truncated-json", "not-an-object", "path-in-digest", "deep-nesting"])
def test_malformed_manifest(fake_registry, body):
    fr = fake_registry()
    fr.add_manifest("test/malformed", "v1", body, MEDIA_TYPES["oci"]["manifest"])
    ref = f"{fr.host}/test/malformed:v1"
    line = one_error_line(pull(ref))
    assert re.search(r"manifest|json|invalid|malformed|parse|digest", line, re.I), line
    assert ref not in bus_images()
    assert not Path("/etc/passwd").is_symlink()
    # Whatever bytes were stored, nothing references them: gc reclaims them.
    d = "sha256:" + hashlib.sha256(body).hexdigest()
    assert bus_content().get(d, (0, 0, []))[2] == []


def test_blob_longer_than_descriptor(fake_registry, tmp_path):
    b, img = build(tmp_path, size=50000)
    fr = fake_registry(b.layout_dir)
    layer = img.layers[0]

    def longer(h, method, path):
        if method == "GET" and path.endswith("/blobs/" + layer.digest):
            data = fr.blob_bytes(layer.digest) + os.urandom(100000)
            FakeRegistry.reply(h, method, 200, data, {"Content-Type": "application/octet-stream"})
            return True
        return False
    fr.fault = longer
    line = one_error_line(pull(f"{fr.host}/test/longer@{img.manifest.digest}"))
    assert re.search(r"bytes|size|digest|verif|more than", line, re.I), line
    assert not have_blob(layer.digest)


# ================================================================================================
# transfers: resume, dedupe, sharing, cancel, progress
# ================================================================================================

def big_image(tmp_path, size, nsmall=0, seed=None):
    """An image with one large uncompressed random layer (fast to build) plus nsmall small ones."""
    b = ImageBuilder(tmp_path / "big")
    big = b.add_layer(random_file_layer(size, seed=seed if seed is not None else int.from_bytes(os.urandom(4), "big")),
                      compression="none")
    small = [b.add_layer(unique_entries()) for _ in range(nsmall)]
    img = b.add_image([big] + small, tag="latest")
    return b, img, big


def test_killed_fetcher_download_resumes_with_range(registry, berth_config, proxies, tmp_path):
    size = 200 * MiB
    b, img, big = big_image(tmp_path, size)
    registry.push(b.layout_dir, "latest", "test/resume:v1", timeout=600)
    px = proxies(registry.port, rate=40 * MiB)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/resume:v1"

    proc = subprocess.Popen([str(stack.BERTHCTL), "--no-ask-password", "images", "pull", ref],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: ingest_data_size(big.digest) >= 40 * MiB, timeout=120,
                 what="a partial download of 40 MiB in the ingest dir")
        fetcher = name_pid("org.berth.Fetcher1")
        assert fetcher
        os.kill(fetcher, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    partial = ingest_data_size(big.digest)
    first_bytes = px.bytes_down
    if proc.returncode == 0:
        # The broker restarted the fetcher and resumed within the same pull: also fine, as long
        # as it resumed (Range) rather than starting over.
        assert pulled(subprocess.CompletedProcess(proc.args, 0, out, err)) == img.manifest.digest
        second = 0
    else:
        assert err.strip(), "no error message after the fetcher died"
        assert partial >= 40 * MiB, "the partial download was not kept for resume"
        assert not have_blob(big.digest)
        px.reset()
        px.rate = None
        assert pulled(pull(ref)) == img.manifest.digest
        second = px.bytes_down
        assert second <= size - partial + 2 * MiB, f"second pull moved {second} bytes; {partial} were already here"
    assert_blob_committed(big)
    assert first_bytes + second < size + size // 4, (first_bytes, second)
    ranged = [g for g in px.blob_gets(big.digest) if g["range"]]
    assert ranged and re.fullmatch(r"bytes=(\d+)-", ranged[0]["range"]), px.blob_gets(big.digest)
    assert int(re.match(r"bytes=(\d+)-", ranged[0]["range"]).group(1)) >= 40 * MiB
    assert ingest_entries_for(big.digest) == []
    rm_images(ref)


def test_present_blobs_not_fetched_again(registry, proxies, berth_config, tmp_path):
    b = ImageBuilder(tmp_path / "layout")
    shared = b.add_layer(unique_entries(100000))
    own_a = b.add_layer(unique_entries(100000))
    own_b = b.add_layer(unique_entries(100000))
    b.add_image([shared, own_a], tag="a")
    b.add_image([shared, own_b], tag="b")
    registry.push(b.layout_dir, "a", "test/share:a")
    registry.push(b.layout_dir, "b", "test/share:b")
    px = proxies(registry.port)
    berth_config.registry(px.host, plain_http=True)

    pulled(pull(f"{px.host}/test/share:a"))
    assert len(px.blob_gets(shared.digest)) == 1 and len(px.blob_gets(own_a.digest)) == 1

    px.reset()
    pulled(pull(f"{px.host}/test/share:b"))
    assert px.blob_gets(shared.digest) == [], "a layer already in the store was downloaded again"
    assert len(px.blob_gets(own_b.digest)) == 1
    assert_blob_committed(own_b)

    px.reset()
    pulled(pull(f"{px.host}/test/share:a"))
    assert px.blob_gets() == [], f"re-pull fetched blobs: {px.blob_gets()}"
    layer_bytes = shared.size + own_a.size
    assert px.bytes_down < layer_bytes, "re-pull moved as many bytes as the layers"
    rm_images(f"{px.host}/test/share:a", f"{px.host}/test/share:b")


@pytest.mark.parametrize("max_concurrent", [None, 1])
def test_several_blobs_at_once(registry, proxies, berth_config, tmp_path, max_concurrent):
    """Default: up to 3 layer downloads run at once. max-concurrent-downloads=1: one at a time."""
    b = ImageBuilder(tmp_path / "layout")
    layers = [b.add_layer(random_file_layer(3 * MiB, seed=int.from_bytes(os.urandom(4), "big")),
                          compression="none") for _ in range(4)]
    img = b.add_image(layers, tag="latest")
    registry.push(b.layout_dir, "latest", "test/parallel:v1")
    px = proxies(registry.port, rate=3 * MiB)  # per connection: each layer takes ~1 s
    berth_config.registry(px.host, plain_http=True)
    if max_concurrent:
        berth_config.fetcher_settings(max_concurrent_downloads=max_concurrent)
    ref = f"{px.host}/test/parallel:v1"
    assert pulled(pull(ref)) == img.manifest.digest
    # Throttled to ~1 s per layer, four layers: the default fetcher keeps 3 downloads in flight at
    # once (never 4); max-concurrent-downloads=1 never overlaps two.
    if max_concurrent is None:
        assert px.max_concurrent_blob_gets() == 3, px.blob_gets()
    else:
        assert px.max_concurrent_blob_gets() == 1, px.blob_gets()
    for d in image_blobs(img):
        assert_blob_committed(d)
    rm_images(ref)


def test_pull_fails_when_broker_dies(registry, proxies, berth_config, tmp_path):
    """The broker going away mid-pull (crash, restart) ends `images pull` with an error; it must not
    wait for a Finished signal that will never come."""
    b, img, big = big_image(tmp_path, 32 * MiB)
    registry.push(b.layout_dir, "latest", "test/brokerdies:v1")
    px = proxies(registry.port, rate=4 * MiB)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/brokerdies:v1"
    proc = subprocess.Popen([str(stack.BERTHCTL), "--no-ask-password", "images", "pull", ref],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: ingest_data_size(big.digest) > 2 * MiB, timeout=60, what="download under way")
        os.kill(name_pid(BROKER), signal.SIGKILL)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail("berthctl images pull still waiting 20 s after the broker died")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stack.busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                     "StartServiceByName", "su", BROKER, "0")
    line = one_error_line(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    assert "broker" in line.lower() or "disconnect" in line.lower(), line


def pull_image_bus(ref, platform="", flags=0, user=None):
    p = busctl("call", BROKER, BROKER_PATH, MANAGER, "PullImage", "sst", ref, platform, str(flags), user=user)
    assert p.returncode == 0, f"PullImage as {user or 'root'}: {p.stderr}"
    m = re.fullmatch(r'o "(/org/berth/Broker1/transfer/\S+)"', p.stdout.strip())
    assert m, p.stdout
    return m.group(1)


def bus_error_name(path, iface, method, sig, args):
    """Call a broker method as root through GDBus; return the D-Bus error name (None on success)."""
    from gi.repository import Gio, GLib
    bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
    try:
        bus.call_sync(BROKER, path, iface, method, GLib.Variant(sig, args), None,
                      Gio.DBusCallFlags.NONE, 30000, None)
    except GLib.Error as e:
        return Gio.DBusError.get_remote_error(e)
    return None


def transfer_prop(path, prop):
    j = bus_json("get-property", BROKER, path, TRANSFER, prop)
    return j["data"]


def test_two_callers_share_one_transfer(registry, proxies, berth_config, member, tmp_path):
    b, img, big = big_image(tmp_path, 48 * MiB, nsmall=2)
    registry.push(b.layout_dir, "latest", "test/shared:v1")
    px = proxies(registry.port, rate=16 * MiB)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/shared:v1"

    t_root = pull_image_bus(ref)
    t_member = pull_image_bus(ref, user=member)
    assert t_root == t_member, "two pulls of the same image got two transfers"
    # And through the CLI: both callers wait on it and both see the same result.
    procs = [subprocess.Popen(["runuser", "-u", u, "--", str(stack.BERTHCTL), "--no-ask-password",
                               "images", "pull", ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) if u else
             subprocess.Popen([str(stack.BERTHCTL), "--no-ask-password", "images", "pull", ref],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for u in (None, member)]
    outs = [p.communicate(timeout=300) for p in procs]
    digests = set()
    for p, (out, err) in zip(procs, outs):
        digests.add(pulled(subprocess.CompletedProcess(p.args, p.returncode, out, err)))
    assert digests == {img.manifest.digest}
    for l in img.layers:
        assert len(px.blob_gets(l.digest)) == 1, f"{l.digest} fetched {len(px.blob_gets(l.digest))} times"
    assert px.bytes_down < sum(d.size for d in image_blobs(img)) + 2 * MiB
    assert transfer_prop(t_root, "Result") == "done"
    rm_images(ref)


def test_cancel_transfer(registry, proxies, berth_config, tmp_path):
    from gi.repository import Gio, GLib
    b, img, big = big_image(tmp_path, 64 * MiB)
    registry.push(b.layout_dir, "latest", "test/cancel:v1")
    px = proxies(registry.port, rate=8 * MiB)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/cancel:v1"

    bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
    finished = []
    sub = bus.signal_subscribe(None, TRANSFER, "Finished", None, None, Gio.DBusSignalFlags.NONE,
                               lambda c, s, path, i, sig, params: finished.append((path, params.unpack())))
    try:
        path = pull_image_bus(ref)
        wait_for(lambda: ingest_data_size(big.digest) > 4 * MiB, timeout=60, what="download under way")
        assert transfer_prop(path, "State") == "downloading"
        p = busctl("call", BROKER, path, TRANSFER, "Cancel")
        assert p.returncode == 0, p.stderr
        ctx = GLib.MainContext.default()
        deadline = time.monotonic() + 30
        while not [f for f in finished if f[0] == path] and time.monotonic() < deadline:
            ctx.iteration(False)
            time.sleep(0.02)
    finally:
        bus.signal_unsubscribe(sub)
    got = [f[1] for f in finished if f[0] == path]
    assert got, "no Finished signal after Cancel"
    assert got[0][0] == "cancelled", got
    assert transfer_prop(path, "Result") == "cancelled"
    assert transfer_prop(path, "State") == "cancelled"
    assert ref not in bus_images()
    assert not have_blob(big.digest)
    # The download really stopped: the byte count stays flat.
    n = px.bytes_down
    time.sleep(1.5)
    assert px.bytes_down - n < 1 * MiB, "bytes still flowing after Cancel"


def test_transfer_properties_and_signals(registry, proxies, berth_config, tmp_path):
    from gi.repository import Gio, GLib
    b, img, big = big_image(tmp_path, 16 * MiB, nsmall=1)
    registry.push(b.layout_dir, "latest", "test/signals:v1")
    px = proxies(registry.port, rate=8 * MiB)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/signals:v1"
    bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
    got = []
    subs = [bus.signal_subscribe(None, TRANSFER, name, None, None, Gio.DBusSignalFlags.NONE,
                                 lambda c, s, path, i, sig, params: got.append((path, sig, params.unpack())))
            for name in ("Progress", "Finished")]
    try:
        path = bus.call_sync(BROKER, BROKER_PATH, MANAGER, "PullImage", GLib.Variant("(sst)", (ref, "", 0)),
                             None, Gio.DBusCallFlags.NONE, 30000, None).unpack()[0]
        ctx = GLib.MainContext.default()
        deadline = time.monotonic() + 120
        while not [g for g in got if g[0] == path and g[1] == "Finished"] and time.monotonic() < deadline:
            ctx.iteration(False)
            time.sleep(0.01)
    finally:
        for sub in subs:
            bus.signal_unsubscribe(sub)
    mine = [g for g in got if g[0] == path]
    finished = [g[2] for g in mine if g[1] == "Finished"]
    assert finished == [("done", "")], finished
    progress = [g[2] for g in mine if g[1] == "Progress"]
    assert len(progress) >= 3, f"only {len(progress)} Progress signals for a 2 s download"
    dones = [p[0] for p in progress]
    assert dones == sorted(dones), "Progress went backwards"
    # rate limit: ~10 per second at most (2 s download -> well under 100)
    assert len(progress) < 100, len(progress)
    layer_bytes = sum(l.size for l in img.layers)
    total = transfer_prop(path, "BytesTotal")
    assert layer_bytes <= total <= sum(d.size for d in image_blobs(img)), (total, layer_bytes)
    assert transfer_prop(path, "BytesDone") == total
    assert transfer_prop(path, "ImageDigest") == img.manifest.digest
    assert transfer_prop(path, "Reference") == ref
    assert transfer_prop(path, "State") == "done"
    assert transfer_prop(path, "Error") == ""
    layers = {l[0]: l for l in transfer_prop(path, "Layers")}
    for l in img.layers:
        assert l.digest in layers, layers
        digest, mt, state, done, tot = layers[l.digest]
        assert (mt, done, tot) == (l.media_type, l.size, l.size), layers[l.digest]
        assert state in ("done", "unpacked"), layers[l.digest]
    assert [p for p in progress if p[2]], "Progress carries no per-layer rows"
    rm_images(ref)


def test_cancel_refused_for_another_user(registry, proxies, berth_config, member, tmp_path):
    b, img, big = big_image(tmp_path, 32 * MiB)
    registry.push(b.layout_dir, "latest", "test/cancelother:v1")
    px = proxies(registry.port, rate=4 * MiB)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/cancelother:v1"
    path = pull_image_bus(ref)
    p = busctl("call", BROKER, path, TRANSFER, "Cancel", user=member)
    assert p.returncode != 0, "a member cancelled root's transfer"
    assert transfer_prop(path, "State") in ("resolving", "downloading")
    assert busctl("call", BROKER, path, TRANSFER, "Cancel").returncode == 0


def run_in_pty(cmd, timeout=300):
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="40")
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            # drain what is left
            try:
                while select.select([master], [], [], 0.1)[0]:
                    data = os.read(master, 65536)
                    if not data:
                        break
                    chunks.append(data)
            except OSError:
                pass
            break
    proc.wait(timeout=30)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


def test_progress_on_terminal(registry, proxies, berth_config, tmp_path):
    b, img, big = big_image(tmp_path, 24 * MiB, nsmall=1)
    registry.push(b.layout_dir, "latest", "test/progress:v1")
    px = proxies(registry.port, rate=8 * MiB)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/progress:v1"
    rc, out = run_in_pty([str(stack.BERTHCTL), "--no-ask-password", "images", "pull", ref])
    assert rc == 0, out
    for l in img.layers:
        assert hexof(l.digest)[:12] in out, f"no progress row for layer {l.digest}:\n{out[-2000:]}"
    assert "\x1b[" in out or "\r" in out.replace("\r\n", ""), "no redrawing on a terminal"
    assert re.search(r"/s\b", out), "no speed on the total line"
    # Redrawn several times while the big layer downloads (3 s at 8 MB/s).
    assert out.count(hexof(big.digest)[:12]) >= 3, out[-2000:]
    assert f"{ref}: {img.manifest.digest}" in out
    rm_images(ref)


def test_progress_plain_lines_without_terminal(registry, proxies, berth_config, tmp_path):
    b, img = build(tmp_path, nlayers=2, size=100000)
    registry.push(b.layout_dir, "latest", "test/plain:v1")
    ref = f"{registry.host}/test/plain:v1"
    p = pull(ref)
    pulled(p, ref)
    assert "\x1b" not in p.stdout + p.stderr and "\r" not in p.stdout
    for l in img.layers:
        rows = [line for line in p.stdout.splitlines() if hexof(l.digest)[:12] in line]
        assert rows, f"no line for layer {l.digest}:\n{p.stdout}"
        assert any(re.search(r"\b(done|exists|unpacked)\b", r) for r in rows), rows
    # --quiet: nothing on stdout except perhaps the final line.
    rm_images(ref)
    q = pull(ref, "--quiet")
    assert q.returncode == 0, q.stderr
    assert len(q.stdout.strip().splitlines()) <= 1, q.stdout
    assert q.stderr.strip() == ""
    rm_images(ref)


# ================================================================================================
# authorisation
# ================================================================================================

def test_outsider_cannot_pull(registry, proxies, berth_config, outsider, tmp_path):
    b, img = build(tmp_path)
    registry.push(b.layout_dir, "latest", "test/outsider:v1")
    px = proxies(registry.port)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/outsider:v1"
    line = one_error_line(pull(ref, user=outsider))
    assert "permission denied" in line, line
    assert "org.berth.image-pull" in line, line
    assert px.requests == [], "the registry was contacted for a refused caller"
    assert ref not in bus_images()


def test_member_can_pull_but_not_remove_or_gc(registry, member, tmp_path):
    b, img = build(tmp_path)
    registry.push(b.layout_dir, "latest", "test/member:v1")
    ref = f"{registry.host}/test/member:v1"
    assert pulled(pull(ref, user=member)) == img.manifest.digest
    assert bus_images()[ref][0] == img.manifest.digest
    p = berthctl("images", "rm", ref, user=member)
    line = one_error_line(p, "images rm")
    assert "permission denied" in line and "org.berth.image-remove" in line, line
    assert ref in bus_images()
    p = berthctl("content", "gc", user=member)
    line = one_error_line(p, "content gc")
    assert "permission denied" in line, line
    for d in image_blobs(img):
        assert_blob_committed(d)
    rm_images(ref)


# ================================================================================================
# images tag / rm, content ls / gc
# ================================================================================================

def test_tag_rm_content_ls_gc(registry, tmp_path):
    b = ImageBuilder(tmp_path / "layout")
    shared = b.add_layer(unique_entries(100000))
    own_a = b.add_layer(unique_entries(100000))
    own_b = b.add_layer(unique_entries(100000))
    a = b.add_image([shared, own_a], tag="a", cmd=["/a"])
    bb = b.add_image([shared, own_b], tag="b", cmd=["/b"])
    registry.push(b.layout_dir, "a", "test/gc:a")
    registry.push(b.layout_dir, "b", "test/gc:b")
    ref_a, ref_b = f"{registry.host}/test/gc:a", f"{registry.host}/test/gc:b"
    pulled(pull(ref_a))
    pulled(pull(ref_b))

    # tag: a new name for the same target
    alias = f"{registry.host}/test/gc-alias:latest"
    p = berthctl("images", "tag", ref_a, alias)
    assert p.returncode == 0, p.stderr
    assert bus_images()[alias][0] == a.manifest.digest
    assert cli_images()[alias] == a.manifest.digest
    # tagging onto an existing name that points elsewhere is refused; same target is a no-op
    p = berthctl("images", "tag", ref_b, alias)
    one_error_line(p, "images tag")
    assert bus_images()[alias][0] == a.manifest.digest
    assert berthctl("images", "tag", ref_a, alias).returncode == 0

    # content ls: every blob, with the images that use it
    content = bus_content()
    for d in image_blobs(a) + image_blobs(bb):
        assert d.digest in content, d.digest
        assert content[d.digest][0] == d.size
    assert set(content[shared.digest][2]) >= {ref_a, ref_b, alias}
    assert set(content[own_b.digest][2]) == {ref_b}
    p = berthctl("content", "ls")
    assert p.returncode == 0 and own_a.digest in p.stdout and shared.digest in p.stdout
    p = berthctl("content", "ls", "--json")
    assert p.returncode == 0
    assert {own_a.digest, shared.digest} <= all_digests_in(json.loads(p.stdout))

    # rm one name: the other still holds the blobs, gc keeps them
    assert berthctl("images", "rm", ref_a).returncode == 0
    assert ref_a not in bus_images() and alias in bus_images()
    assert berthctl("content", "gc").returncode == 0
    for d in image_blobs(a):
        assert_blob_committed(d)

    # rm the last name: gc removes what only A used, keeps what B uses
    assert berthctl("images", "rm", alias).returncode == 0
    content = bus_content()
    assert content[own_a.digest][2] == []
    p = berthctl("content", "gc")
    assert p.returncode == 0, p.stderr
    for d in (a.manifest, a.config, own_a):
        assert not have_blob(d.digest), f"{d.digest} survived gc"
    for d in image_blobs(bb):
        assert_blob_committed(d)
    assert bus_images()[ref_b][0] == bb.manifest.digest

    # rm of an unknown name: one clear error
    line = one_error_line(berthctl("images", "rm", ref_a), "images rm")
    assert "test/gc:a" in line
    # images prune is content gc
    assert berthctl("images", "rm", ref_b).returncode == 0
    assert berthctl("images", "prune").returncode == 0
    for d in image_blobs(bb):
        assert not have_blob(d.digest)


def test_gc_reclaims_interrupted_pull_with_all_flag(registry, proxies, berth_config, tmp_path):
    """An interrupted pull leaves nothing gc cannot reclaim (PruneContent flag 1: all partials)."""
    b, img, big = big_image(tmp_path, 32 * MiB)
    registry.push(b.layout_dir, "latest", "test/gcpartial:v1")
    px = proxies(registry.port, rate=4 * MiB)
    berth_config.registry(px.host, plain_http=True)
    path = pull_image_bus(f"{px.host}/test/gcpartial:v1")
    wait_for(lambda: ingest_data_size(big.digest) > 2 * MiB, timeout=60, what="download under way")
    assert busctl("call", BROKER, path, TRANSFER, "Cancel").returncode == 0
    wait_for(lambda: transfer_prop(path, "Result") == "cancelled", timeout=30, what="cancelled")
    assert ingest_entries_for(big.digest)
    p = busctl("call", BROKER, BROKER_PATH, MANAGER, "PruneContent", "t", "1")
    assert p.returncode == 0, p.stderr
    m = re.fullmatch(r"tu (\d+) (\d+)", p.stdout.strip())
    assert m and int(m.group(1)) >= 2 * MiB, p.stdout
    assert ingest_entries_for(big.digest) == []
    # unknown flag bits are refused
    assert bus_error_name(BROKER_PATH, MANAGER, "PruneContent", "(t)", (4,)) == \
        "org.freedesktop.DBus.Error.InvalidArgs"
