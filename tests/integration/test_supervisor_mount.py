"""The supervisor's read-only image views (MountImage/UnmountImage), on a private bus.

Snapshots are laid out by hand the way the unpacker commits them (snapshots/<hex>/fs plus
snapshot.json), so this tests the supervisor alone: it walks parents itself, mounts onto a directory
fd the caller opened, and unmounts only its own views.
"""
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from berthtest import stack
from berthtest.privatebus import PrivateBus

CLIENT = r'''
import json, os, sys
import dbus
bus = dbus.bus.BusConnection(os.environ["BUS"])
obj = bus.get_object("org.berth.Supervisor1", "/org/berth/Supervisor1")
sup = dbus.Interface(obj, "org.berth.Supervisor1")
op = sys.argv[1]
try:
    if op == "mount":
        fd = os.open(sys.argv[3], os.O_PATH | os.O_DIRECTORY)
        print(json.dumps({"mount_id": int(sup.MountImage(sys.argv[2], dbus.types.UnixFd(fd), dbus.UInt64(0)))}))
    elif op == "unmount":
        fd = os.open(sys.argv[2], os.O_PATH | os.O_DIRECTORY)
        sup.UnmountImage(dbus.types.UnixFd(fd), dbus.UInt64(0))
        print(json.dumps({}))
    elif op == "list":
        print(json.dumps({"ids": [str(x) for x in sup.ListMountedSnapshots()]}))
except dbus.exceptions.DBusException as e:
    print(json.dumps({"error": e.get_dbus_name(), "message": e.get_dbus_message()}))
'''


def chain(parent, diff):
    return "sha256:" + hashlib.sha256(f"{parent} {diff}".encode()).hexdigest() if parent else diff


@pytest.fixture
def env():
    state = Path(tempfile.mkdtemp(prefix="berth-state-"))
    state.chmod(0o755)
    snaps = state / "snapshots"
    snaps.mkdir(mode=0o700)
    bus = PrivateBus()
    client = bus.dir / "client.py"
    client.write_text(CLIENT)
    client.chmod(0o644)
    bus.start("supervisor", env={"BERTH_STATE_DIR": state})
    mnt = bus.dir / "mnt"
    mnt.mkdir()
    mnt.chmod(0o777)

    def call(*args, user="berth-broker"):
        p = stack.run(["env", f"BUS={bus.address}", "/usr/bin/python3", str(client), *map(str, args)], user=user)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    class Env:
        pass
    e = Env()
    e.snaps, e.bus, e.call, e.mnt = snaps, bus, call, mnt

    def make(layers):
        """layers: list of dicts path → content (None = overlay whiteout). Returns chain ids."""
        ids, parent = [], ""
        for i, files in enumerate(layers):
            diff = "sha256:" + hashlib.sha256(f"layer{i}{sorted(files)}".encode()).hexdigest()
            cid = chain(parent, diff)
            d = snaps / cid.split(":")[1]
            (d / "fs").mkdir(parents=True)
            for path, content in files.items():
                f = d / "fs" / path
                f.parent.mkdir(parents=True, exist_ok=True)
                if content is None:
                    os.mknod(f, 0o600 | 0o020000, os.makedev(0, 0))
                else:
                    f.write_text(content)
            (d / "snapshot.json").write_text(json.dumps({"chain_id": cid, "parent": parent, "diff_id": diff}))
            ids.append(cid)
            parent = cid
        return ids
    e.make = make
    yield e
    subprocess.run(["umount", "-R", str(mnt)], capture_output=True)
    bus.close()
    subprocess.run(["rm", "-rf", str(state)])


def test_mount_merges_layers_read_only_and_unmount_restores(env):
    ids = env.make([{"a": "1", "b": "base", "etc/x": "x"}, {"b": "top", "etc/x": None, "c": "3"}])
    r = env.call("mount", ids[-1], env.mnt)
    assert "error" not in r, r
    assert (env.mnt / "a").read_text() == "1"
    assert (env.mnt / "b").read_text() == "top"
    assert (env.mnt / "c").read_text() == "3"
    assert not (env.mnt / "etc" / "x").exists()  # whiteout hides the lower file
    with pytest.raises(OSError):
        (env.mnt / "new").write_text("no")
    opts = [l for l in Path("/proc/self/mountinfo").read_text().splitlines() if f" {env.mnt} " in l]
    assert opts and "nosuid" in opts[0] and "nodev" in opts[0] and " ro" in opts[0]
    used = env.call("list")["ids"]
    assert set(ids) <= set(used)
    assert env.call("unmount", env.mnt) == {}
    assert not (env.mnt / "a").exists()
    # Only this store's snapshots are ours to check: containers running on the machine use theirs.
    assert not set(ids) & set(env.call("list")["ids"])


def test_single_layer_is_a_read_only_bind(env):
    ids = env.make([{"only": "one"}])
    assert "error" not in env.call("mount", ids[0], env.mnt)
    assert (env.mnt / "only").read_text() == "one"
    with pytest.raises(OSError):
        (env.mnt / "only").write_text("x")
    assert env.call("unmount", env.mnt) == {}


def test_deep_chain_beyond_one_page_of_mount_options(env):
    # 80 layers × ~90 bytes of path each is well over 4096 bytes of lowerdir= string.
    ids = env.make([{f"f{i}": str(i)} for i in range(80)])
    r = env.call("mount", ids[-1], env.mnt)
    assert "error" not in r, r
    assert sorted(p.name for p in env.mnt.iterdir()) == sorted(f"f{i}" for i in range(80))
    assert env.call("unmount", env.mnt) == {}


def test_unknown_or_broken_chain_is_refused(env):
    r = env.call("mount", "sha256:" + "0" * 64, env.mnt)
    assert r.get("error") == "org.berth.Error.NotFound", r
    assert "not committed" in r["message"]
    ids = env.make([{"a": "1"}, {"b": "2"}])
    (env.snaps / ids[0].split(":")[1]).rename(env.snaps / ("0" * 64))  # parent vanished
    r = env.call("mount", ids[1], env.mnt)
    assert "error" in r and "not committed" in r["message"]
    r = env.call("mount", "../../etc", env.mnt)
    assert "error" in r and "invalid chain id" in r["message"]


def test_unmount_refuses_mounts_berth_did_not_make(env):
    other = env.bus.dir / "other"
    other.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(other)], check=True)
    try:
        r = env.call("unmount", other)
        assert "error" in r and "not an image view mounted by berth" in r["message"], r
        assert "tmpfs" in Path("/proc/self/mountinfo").read_text()
    finally:
        subprocess.run(["umount", str(other)])


def test_only_the_broker_may_call(env):
    ids = env.make([{"a": "1"}])
    r = env.call("mount", ids[0], env.mnt, user="nobody")
    assert r.get("error") == "org.berth.Error.NotBroker", r
    assert not (env.mnt / "a").exists()
