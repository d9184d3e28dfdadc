"""berth-unpacker on a private bus: commits, named errors, confinement, the sandboxed child, crashes.

Self-contained (it needs no running stack): run as root, also with
    pytest --noconftest tests/integration/test_unpacker_sandbox.py
BERTH_UNPACKER_BIN picks the binary; default: the one in $BERTH_BUILD_DIR (or build/).
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from berthtest.privatebus import PrivateBus

TOP = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("BERTH_UNPACKER_BIN") or
           Path(os.environ.get("BERTH_BUILD_DIR", TOP / "build")) / "services/unpacker/berth-unpacker")
WORKER = BIN.parent / "berth-unpack-worker"
BROKER = "berth-broker"
GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
EXPECTED_CAPEFF = 0x8820001B  # CHOWN DAC_OVERRIDE FOWNER FSETID SYS_ADMIN MKNOD SETFCAP

CLIENT = r'''
import json, os, sys
import dbus
bus = dbus.bus.BusConnection(os.environ["BUS"])
obj = bus.get_object("org.berth.Unpacker1", "/org/berth/Unpacker1")
iface = dbus.Interface(obj, "org.berth.Unpacker1")
cmd = sys.argv[1]
try:
    if cmd == "unpack":
        chain, parent, digest, diff_id, media, path = sys.argv[2:8]
        with open(path, "rb") as f:
            size, entries = iface.Unpack(chain, parent, digest, diff_id, media, dbus.types.UnixFd(f), dbus.UInt64(0),
                                         timeout=600)
        print(json.dumps({"size": int(size), "entries": int(entries)}))
    elif cmd == "list":
        print(json.dumps([[str(a), str(b), str(c), int(d), int(e)] for a, b, c, d, e in iface.ListSnapshots()]))
    elif cmd == "remove":
        print(json.dumps({"freed": int(iface.RemoveSnapshots(sys.argv[2:]))}))
    elif cmd == "clean":
        print(json.dumps({"freed": int(iface.CleanWork())}))
    elif cmd == "info":
        print(json.dumps({k: str(v) for k, v in iface.GetInfo().items()}))
except dbus.exceptions.DBusException as e:
    print(json.dumps({"error": e.get_dbus_name(), "message": e.get_dbus_message()}))
'''


def sha256(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def make_tar(build):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        build(t)
    return buf.getvalue()


def add(t, name, data=b"", kind=tarfile.REGTYPE, mode=0o644, linkname="", uid=0, gid=0):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.linkname, ti.uid, ti.gid, ti.mtime = kind, mode, linkname, uid, gid, 1_000_000_000
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    t.addfile(ti, io.BytesIO(data) if ti.size else None)


class Zeros(io.RawIOBase):
    def __init__(self, n):
        self.left = n

    def readinto(self, b):
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


class Env:
    def __init__(self, tmp, address):
        self.tmp = tmp
        self.address = address
        self.state = tmp / "state"
        self.conf = tmp / "conf"
        self.blobs = tmp / "blobs"
        self.client = tmp / "client.py"
        self.sentinel = tmp / "sentinel"
        self.service = None

    @property
    def snapshots(self):
        return self.state / "snapshots"

    def start(self):
        log = open(self.tmp / "unpacker.log", "ab")
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address, BERTH_STATE_DIR=str(self.state),
                   BERTH_CONFIG_DIR=str(self.conf))
        # The worker built with this unpacker, not whatever is installed.
        if WORKER.exists():
            env.setdefault("BERTH_UNPACK_WORKER", str(WORKER))
        self.service = subprocess.Popen([str(BIN), "-v"], env=env, stdout=log, stderr=log)
        for _ in range(200):
            if "error" not in self.call("info") or self.service.poll() is not None:
                break
            time.sleep(0.05)
        assert self.service.poll() is None, (self.tmp / "unpacker.log").read_text()
        info = self.call("info")
        assert "error" not in info, (info, (self.tmp / "unpacker.log").read_text())

    def stop(self, sig=signal.SIGTERM):
        if self.service and self.service.poll() is None:
            self.service.send_signal(sig)
            self.service.wait(10)

    def call(self, *args, user=BROKER):
        cmd = ["/usr/bin/python3", str(self.client), *args]
        if user:
            cmd = ["runuser", "-u", user, "--"] + cmd
        p = subprocess.run(cmd, env=dict(os.environ, BUS=self.address), capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    def blob(self, name, data):
        p = self.blobs / name
        p.write_bytes(data)
        p.chmod(0o644)
        return p

    def unpack(self, tar, parent="", digest=None, diff_id=None, chain=None, name="layer", user=BROKER):
        blob = gzip.compress(tar, compresslevel=1)
        path = self.blob(name, blob)
        diff_id = diff_id or sha256(tar)
        if chain is None:
            chain = diff_id if not parent else sha256(f"{parent} {diff_id}".encode())
        return chain, self.call("unpack", chain, parent, digest or sha256(blob), diff_id, GZIP, str(path), user=user)

    def committed(self):
        return sorted(p.name for p in self.snapshots.iterdir() if p.name != "tmp")

    def tmp_entries(self):
        return sorted(os.listdir(self.snapshots / "tmp"))


def make_env(prefix="berth-unpacker-it-", extra_env=None):
    """(Env, its private bus, its directory): the built unpacker started on a private bus, with
    extra_env in its environment."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    tmp.chmod(0o755)
    bus = PrivateBus()
    e = Env(tmp, bus.address)
    for d in (e.conf, e.blobs, e.sentinel):
        d.mkdir()
        d.chmod(0o755)
    (e.sentinel / "file").write_text("safe")
    e.client.write_text(CLIENT)
    e.client.chmod(0o644)
    saved = dict(os.environ)
    os.environ.update(extra_env or {})
    try:
        e.start()
    except BaseException:
        e.stop()
        bus.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return e, bus, tmp


@pytest.fixture(scope="module")
def env():
    assert os.geteuid() == 0, "runs as root (it starts services and switches users)"
    assert BIN.exists(), f"{BIN} not built (set BERTH_BUILD_DIR or BERTH_UNPACKER_BIN)"
    subprocess.run(["id", BROKER], check=True, capture_output=True)
    e, bus, tmp = make_env()
    try:
        yield e
    finally:
        e.stop()
        bus.close()
        shutil.rmtree(tmp, ignore_errors=True)


def assert_sentinel(env):
    assert os.listdir(env.sentinel) == ["file"]
    assert (env.sentinel / "file").read_text() == "safe"


def test_good_layer_commits(env):
    def build(t):
        add(t, "etc/", kind=tarfile.DIRTYPE, mode=0o755)
        add(t, "etc/hostname", b"berth\n", uid=1000, gid=1000)
        add(t, "bin/sh", b"#!", mode=0o4755)
        add(t, "etc/link", kind=tarfile.SYMTYPE, linkname="/etc/hostname")
        add(t, "etc/.wh.gone")
    tar = make_tar(build)
    chain, r = env.unpack(tar)
    assert r == {"size": len(tar), "entries": 5}, r
    fs = env.snapshots / chain.split(":")[1] / "fs"
    assert (fs / "etc/hostname").read_text() == "berth\n"
    assert (fs / "etc/hostname").stat().st_uid == 1000
    assert (fs / "bin/sh").stat().st_mode & 0o7777 == 0o4755
    assert os.readlink(fs / "etc/link") == "/etc/hostname"
    st = os.lstat(fs / "etc/gone")
    assert (st.st_mode & 0o170000) == 0o020000 and st.st_rdev == 0
    meta = json.loads((fs.parent / "snapshot.json").read_text())
    assert meta["chain_id"] == chain and meta["parent"] == "" and meta["size"] == len(tar)
    assert (env.snapshots.stat().st_mode & 0o777) == 0o700
    assert [chain, "", chain, len(tar), 5] in env.call("list")
    # Already committed: answered at once, same result.
    assert env.unpack(tar)[1] == r

    # A child layer on top, then removal rules.
    tar2 = make_tar(lambda t: add(t, "etc/.wh..wh..opq"))
    chain2, r2 = env.unpack(tar2, parent=chain, name="layer2")
    assert "error" not in r2, r2
    assert os.getxattr(env.snapshots / chain2.split(":")[1] / "fs/etc", "trusted.overlay.opaque") == b"y"
    assert env.call("remove", chain)["error"] == "org.berth.Error.Busy"  # parent of chain2
    assert env.call("remove", chain2, chain)["freed"] > 0
    assert env.committed() == []


def test_wrong_digests_commit_nothing(env):
    tar = make_tar(lambda t: add(t, "a", b"x"))
    zero = "sha256:" + "0" * 64
    _, r = env.unpack(tar, digest=zero)
    assert r["error"] == "org.berth.Error.DigestMismatch", r
    _, r = env.unpack(tar, diff_id=zero)  # chain id derived from the wrong diff_id: consistent, still caught
    assert r["error"] == "org.berth.Error.DigestMismatch", r
    assert "diff_id" in r["message"]
    _, r = env.unpack(tar, chain=zero)
    assert r["error"] == "org.freedesktop.DBus.Error.InvalidArgs", r
    _, r = env.unpack(tar, parent=sha256(b"not committed"))
    assert r["error"] == "org.berth.Error.NotFound", r
    assert env.committed() == []
    assert env.tmp_entries() == []


def test_hostile_layer_cannot_touch_sentinel(env):
    def build(t):
        add(t, "out", kind=tarfile.SYMTYPE, linkname=str(env.sentinel))
        add(t, "out/file", b"evil")
    _, r = env.unpack(make_tar(build), name="hostile1")
    assert r["error"] == "org.berth.Error.BadContent", r
    _, r = env.unpack(make_tar(lambda t: add(t, "../../../../" + str(env.sentinel) + "/file", b"evil")), name="h2")
    assert r["error"] == "org.berth.Error.BadContent", r
    _, r = env.unpack(make_tar(lambda t: add(t, "x", kind=tarfile.LNKTYPE, linkname=str(env.sentinel / "file"))),
                      name="h3")
    assert r["error"] == "org.berth.Error.BadContent", r
    assert_sentinel(env)
    assert env.committed() == []


def test_not_broker_refused(env):
    tar = make_tar(lambda t: add(t, "a", b"x"))
    _, r = env.unpack(tar, user=None)  # root
    assert r["error"] == "org.berth.Error.NotBroker", r
    assert env.call("list", user=None)["error"] == "org.berth.Error.NotBroker"


def slow_layer(env, name, size=1536 << 20):
    """A gzip layer of zeros that takes a moment to unpack; returns (chain, digest, diff_id, path)."""
    path = env.blobs / name
    h = hashlib.sha256()

    class Tee(io.RawIOBase):
        def __init__(self, f):
            self.f = f

        def write(self, b):
            h.update(b)
            return self.f.write(b)

        def writable(self):
            return True

    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as gz:
        tee = Tee(gz)
        with tarfile.open(fileobj=tee, mode="w|", format=tarfile.PAX_FORMAT) as t:
            ti = tarfile.TarInfo("zeros")
            ti.size = size
            t.addfile(ti, Zeros(size))
    path.chmod(0o644)
    diff_id = "sha256:" + h.hexdigest()
    digest = sha256(path.read_bytes())
    return diff_id, digest, diff_id, path


def unpack_child(env, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        kids = Path(f"/proc/{env.service.pid}/task/{env.service.pid}/children").read_text().split()
        for k in kids:
            try:
                status = Path(f"/proc/{k}/status").read_text()
            except FileNotFoundError:
                continue
            if "Seccomp:\t2" in status:
                return int(k), status
        time.sleep(0.005)
    raise AssertionError("no sandboxed unpack child seen")


def test_child_sandbox_and_crash_recovery(env):
    chain, digest, diff_id, path = slow_layer(env, "slow")
    client = subprocess.Popen(["runuser", "-u", BROKER, "--", "/usr/bin/python3", str(env.client), "unpack", chain, "",
                               digest, diff_id, GZIP, str(path)], env=dict(os.environ, BUS=env.address),
                              stdout=subprocess.PIPE, text=True)
    pid, status = unpack_child(env)
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["Seccomp"].strip() == "2"
    assert fields["NoNewPrivs"].strip() == "1"
    assert int(fields["CapEff"], 16) == EXPECTED_CAPEFF
    assert int(fields["CapPrm"], 16) == EXPECTED_CAPEFF
    assert int(fields["CapBnd"], 16) == EXPECTED_CAPEFF
    assert int(fields["CapInh"], 16) == 0
    svc = env.service.pid
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink(f"/proc/{svc}/ns/net")
    assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink(f"/proc/{svc}/ns/mnt")
    # While it runs, the service still answers.
    assert isinstance(env.call("list"), list)

    # Kill the service mid-unpack: the child dies with it, nothing is committed, tmp/ has the leftover.
    env.stop(signal.SIGKILL)
    client.wait(30)
    for _ in range(200):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), "unpack child outlived the service"
    assert env.committed() == []
    assert env.tmp_entries() != []
    env.start()
    assert env.tmp_entries() == []
    assert env.committed() == []

    # And the same layer completes after the restart.
    r = env.call("unpack", chain, "", digest, diff_id, GZIP, str(path))
    assert r.get("entries") == 1, r
    assert env.committed() == [chain.split(":")[1]]
    assert env.call("remove", chain)["freed"] > 0
