"""CountingProxy: a TCP proxy on 127.0.0.1 between berth and a registry.

It counts the bytes the registry sends, records each HTTP request (method, path, Range header, the
connection, and the order in which requests start and responses end), and can *hold* blob responses:
with ``hold_blobs_after=N`` every blob GET's response stops after N bytes (headers included) until
:meth:`release`. Tests then wait for events -- "k blob responses are held", "the client closed that
connection" -- instead of throttling and sleeping: a pull lasts exactly as long as the test wants.

Every wait takes a ``timeout`` that only guards against a hang (it fails the test); no result depends
on how long anything took.
"""
import itertools
import re
import socket
import threading
import time

HANG_GUARD = 120  # seconds; a wait that takes this long has failed, whatever it waited for


class CountingProxy:
    """TCP proxy 127.0.0.1:port -> target. ``requests``: dicts {method, path, range, conn, headers,
    start, end}; start/end order request starts and response ends (a counter, no clocks)."""

    REQ_RE = re.compile(rb"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP/1\.[01]\r\n(.*?)\r\n\r\n", re.S)

    def __init__(self, target_port, target_host="127.0.0.1", hold_blobs_after=None, rate=None):
        self.target = (target_host, target_port)
        # bytes/s per connection, None = unlimited: for the tests that need a pull to stay in flight
        # while services come and go (idle exit, restarts); nothing is judged by how long it took.
        self.rate = rate
        self.cond = threading.Condition()
        self.lock = self.cond  # one lock for the counters and the gate
        self.hold_after = hold_blobs_after  # None: never hold
        self.hold_digests = None  # None: every blob; else only these
        self.held = 0           # blob responses waiting at the gate now
        self.max_held = 0
        self.bytes_down = 0
        self.requests = []
        self.pending = {}            # conn → requests whose response has not fully arrived yet
        self.client_closed = set()   # conns the client (berth) hung up
        self.seq = itertools.count()
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
            self.max_held = self.held

    # ---- the gate ---------------------------------------------------------------------------------

    def hold_blobs(self, after=0, digests=None):
        """From now on, blob responses (of ``digests`` only, if given) stop after ``after`` bytes until
        release() or release_one()."""
        with self.cond:
            self.hold_after = after
            self.hold_digests = list(digests) if digests is not None else None
            self.cond.notify_all()

    def release_one(self):
        """Let the oldest held response through; the gate stays closed for the others. Returns it."""
        with self.cond:
            held = [r for r in self.requests if r.get("held")]
            assert held, "no response is held"
            first = min(held, key=lambda r: r["start"])
            first["free"] = True
            self.cond.notify_all()
            return first

    def wait_ended(self, req, timeout=HANG_GUARD):
        """Block until the whole response to request ``req`` has passed."""
        with self.cond:
            if not self.cond.wait_for(lambda: req["end"] is not None, timeout):
                raise AssertionError(f"the response to {req['path']} never completed")

    def release(self):
        """Let every held response (and every later one) flow."""
        with self.cond:
            self.hold_after = None
            self.cond.notify_all()

    def wait_held(self, count=1, timeout=HANG_GUARD):
        """Block until at least ``count`` blob responses wait at the gate."""
        with self.cond:
            if not self.cond.wait_for(lambda: self.held >= count, timeout):
                raise AssertionError(f"never {count} blob responses held at once (held: {self.held}, "
                                     f"requests: {[r['path'] for r in self.requests]})")

    def wait_client_closed(self, conn, timeout=HANG_GUARD):
        """Block until berth hangs up connection ``conn`` (a request's "conn")."""
        with self.cond:
            if not self.cond.wait_for(lambda: conn in self.client_closed, timeout):
                raise AssertionError(f"berth kept connection {conn} open")

    def _allowance(self, n, want):
        """How many of ``want`` bytes may pass on connection n now; blocks at a closed gate."""
        with self.cond:
            waited = False
            try:
                while True:
                    q = self.pending.get(n)
                    req = q[0] if q else None
                    blob = req is not None and req["method"] == "GET" and "/blobs/" in req["path"]
                    gated = blob and not req.get("free") and (
                        self.hold_digests is None or any(req["path"].endswith(d) for d in self.hold_digests))
                    if self.hold_after is None or not gated or self.closed:
                        return want
                    left = self.hold_after - req["passed"]
                    if left > 0:
                        return min(want, left)
                    if not waited:
                        waited = True
                        req["held"] = True
                        self.held += 1
                        self.max_held = max(self.max_held, self.held)
                        self.cond.notify_all()
                    self.cond.wait()
            finally:
                if waited:
                    req["held"] = False
                    self.held -= 1
                    self.cond.notify_all()

    # ---- plumbing -----------------------------------------------------------------------------------

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
                             "start": next(self.seq), "end": None, "passed": 0}
                        self.requests.append(r)
                        self.pending.setdefault(n, []).append(r)
                    buf = buf[m.end():]
                if len(buf) > 1 << 20:
                    buf = buf[-65536:]
                u.sendall(data)
        except OSError:
            pass
        finally:
            with self.cond:
                self.client_closed.add(n)
                self.cond.notify_all()
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
                    self.cond.notify_all()

    def _down(self, u, c, n):
        state = {"buf": b"", "left": None}
        try:
            while True:
                data = u.recv(65536)
                if not data:
                    break
                while data:
                    k = self._allowance(n, len(data))
                    c.sendall(data[:k])
                    with self.lock:
                        q = self.pending.get(n)
                        if q:
                            q[0]["passed"] += k
                        self.bytes_down += k
                    self._response_bytes(n, state, data[:k])
                    data = data[k:]
                    if self.rate:
                        time.sleep(k / self.rate)
        except OSError:
            pass
        finally:
            for s in (u, c):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    # ---- what happened ----------------------------------------------------------------------------

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
        with self.cond:
            self.closed = True
            self.cond.notify_all()
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
