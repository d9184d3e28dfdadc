"""Issue 12, finding 5: the unpack child holds nothing outside its snapshot, and its verdict on the
layer's digest is not trusted.

A hostile image is the principal: a layer that compromises the child (a decompressor or tar bug) gets
whatever the child holds. The child now gets the layer through a pipe (never the content-store file), no
writable stderr (the service's log), and fcntl() only for the commands it needs (F_SETOWN/F_SETSIG
would let a root process aim signals at host processes). The service hashes the compressed stream
itself while feeding the pipe, so a child that says "fine" about a blob that is not the expected one
commits nothing.

Self-contained like test_unpacker_sandbox.py (a private bus, the built unpacker, no stack).
"""
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from test_unpacker_sandbox import (BROKER, GZIP, add, make_env as make_unpacker_env, make_tar, sha256,
                                   slow_layer, unpack_child)

# What a compromised worker does: read the pipe to its end, then claim success (UnpackReport, UNPACK_OK).
LYING_WORKER = r'''#!/usr/bin/python3
import os, struct
while os.read(3, 1 << 20):
    pass
os.write(5, struct.pack("=iiQQ", 0, 0, 1, 1) + bytes(1024))
'''


def make_env(extra_env):
    return make_unpacker_env("berth-f5-", extra_env)


@pytest.fixture
def f5env():
    assert os.geteuid() == 0
    e, bus, tmp = make_env({})
    yield e
    e.stop()
    bus.close()
    shutil.rmtree(tmp, ignore_errors=True)


def fd_table(pid):
    """{fd: (link target, open flags)} of a process."""
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            flags = int(dict(l.split(":\t", 1) for l in
                             Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines() if ":\t" in l)
                        ["flags"], 8)
        except FileNotFoundError:
            continue
        out[int(fd)] = (target, flags)
    return out


def test_hardening_f5_child_holds_no_blob_and_no_writable_stderr(f5env):
    env = f5env
    chain, digest, diff_id, path = slow_layer(env, "slow")
    client = subprocess.Popen(["runuser", "-u", BROKER, "--", "/usr/bin/python3", str(env.client), "unpack", chain,
                               "", digest, diff_id, GZIP, str(path)], env=dict(os.environ, BUS=env.address),
                              stdout=subprocess.PIPE, text=True)
    try:
        pid, _ = unpack_child(env)
        fds = fd_table(pid)
        blob = os.stat(path)
        for fd, (target, flags) in fds.items():
            try:
                st = os.stat(f"/proc/{pid}/fd/{fd}")
            except FileNotFoundError:
                continue
            assert (st.st_dev, st.st_ino) != (blob.st_dev, blob.st_ino), f"fd {fd} is the content-store blob"
            writable = flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)
            if writable:
                # The report socket, the implied-dirs memfd (both read by the service only) and the
                # snapshot: nothing else may be written.
                assert (target.startswith("socket:") or "memfd:berth-implied-dirs" in target or
                        stat.S_ISDIR(st.st_mode)), f"fd {fd} ({target}) is writable"
        assert fds[3][0].startswith("pipe:"), f"the layer does not come through a pipe: {fds[3]}"
        assert fds[2][1] & os.O_ACCMODE == os.O_RDONLY, f"stderr is writable: {fds[2]}"
    finally:
        client.wait(600)


def test_hardening_f5_service_rehashes_what_it_feeds():
    """A worker that claims success for a blob that is not the declared one: nothing is committed."""
    assert os.geteuid() == 0
    tmp0 = Path(tempfile.mkdtemp(prefix="berth-f5-liar-"))
    tmp0.chmod(0o755)
    liar = tmp0 / "liar"
    liar.write_text(LYING_WORKER)
    liar.chmod(0o755)
    env, bus, tmp = make_env({"BERTH_UNPACK_WORKER": str(liar)})
    try:
        tar = make_tar(lambda t: add(t, "hello", b"hi\n"))
        r = env.unpack(tar, digest=sha256(b"not this blob"), name="lie")[1]
        assert r.get("error") == "org.berth.Error.DigestMismatch", r
        assert env.committed() == []
    finally:
        env.stop()
        bus.close()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(tmp0, ignore_errors=True)
