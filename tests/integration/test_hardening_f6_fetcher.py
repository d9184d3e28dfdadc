"""Issue 12, finding 6, at the fetcher itself (private bus, no stack; berthtest.privatefetcher): the
archive child that parses a hostile import archive is sandboxed, and import and export still work
inside that sandbox. The end-to-end version through berthctl is test_hardening_f6_archive_sandbox.py.
Run as root, also with  pytest --noconftest tests/integration/test_hardening_f6_fetcher.py
"""
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from berthtest.cli import tar_dir
from berthtest.images import File, ImageBuilder
from berthtest.privatefetcher import PrivateFetcher
from berthtest.sandboxchild import sandboxed_child

# As the broker: ImportArchive(h fd, t flags) with the archive on stdin (a pipe the test holds), or
# ExportArchive(h out, s index, as digests) into stdout.
CLIENT = r'''
import json, os, sys
import dbus
bus = dbus.bus.BusConnection(os.environ["BUS"])
obj = bus.get_object("org.berth.Fetcher1", "/org/berth/Fetcher1")
iface = dbus.Interface(obj, "org.berth.Fetcher1")
try:
    if sys.argv[1] == "import":
        r = iface.ImportArchive(dbus.types.UnixFd(0), dbus.UInt64(0), timeout=300)
        print(json.dumps([[str(x) for x in i[:3]] for i in r]))
    else:
        r = iface.ExportArchive(dbus.types.UnixFd(1), sys.argv[2], sys.argv[3:], timeout=300)
        sys.stderr.write(json.dumps({"bytes": int(r)}))
except dbus.exceptions.DBusException as e:
    sys.stderr.write(json.dumps({"error": e.get_dbus_name(), "message": e.get_dbus_message()}))
    sys.exit(1)
'''


@pytest.fixture
def fetcher():
    assert os.geteuid() == 0
    tmp = Path(tempfile.mkdtemp(prefix="berth-f6-"))
    tmp.chmod(0o755)
    f = PrivateFetcher(tmp)
    (tmp / "client.py").write_text(CLIENT)
    (tmp / "client.py").chmod(0o644)
    yield f
    f.close()
    shutil.rmtree(tmp, ignore_errors=True)


def client(f, *args, **kw):
    return subprocess.Popen(["runuser", "-u", "berth-broker", "--", "/usr/bin/python3", str(f.tmp / "client.py"),
                             *args], env=dict(os.environ, BUS=f.bus.address), **kw)


def fetcher_pid(f):
    # runuser is the child of Popen; the fetcher is runuser's child.
    return int(Path(f"/proc/{f.proc.pid}/task/{f.proc.pid}/children").read_text().split()[0])


def test_hardening_f6_fetcher_archive_child_sandboxed(fetcher, tmp_path):
    b = ImageBuilder(tmp_path / "layout")
    layer = b.add_layer([File("f6", os.urandom(100000))])
    img = b.add_image([layer], tag="localhost/f6/x:v1")
    archive = Path(tar_dir(tmp_path / "layout", tmp_path / "a.tar", compression="gz")).read_bytes()

    p = client(fetcher, "import", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        svc = fetcher_pid(fetcher)
        # The fetcher itself runs under its own allow-list (fetcher-seccomp.h; refusals: test-fetcher-seccomp).
        assert "Seccomp:\t2" in Path(f"/proc/{svc}/status").read_text()
        pid, st = sandboxed_child(svc)
        assert st["NoNewPrivs"].strip() == "1"
        assert int(st["CapEff"], 16) == 0
        assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink(f"/proc/{svc}/ns/net"), "shares the network"
        assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink(f"/proc/{svc}/ns/mnt")
        assert os.listdir(f"/proc/{pid}/root") == [], "the child's root is not empty"
        targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        assert not [t for t in targets if t.startswith("socket:")], targets
    finally:
        out, err = p.communicate(archive, timeout=300)
    assert p.returncode == 0, err
    names = json.loads(out)
    assert names == [["localhost/f6/x:v1", img.manifest.digest, img.manifest.media_type]], names

    # Export inside the same sandbox, read back.
    index = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": img.manifest.media_type,
                                                            "digest": img.manifest.digest,
                                                            "size": img.manifest.size}]})
    out_path = tmp_path / "export.tar"
    with open(out_path, "wb") as o:
        p = client(fetcher, "export", index, img.manifest.digest, img.config.digest, layer.digest, stdout=o,
                   stderr=subprocess.PIPE)
        _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    with tarfile.open(out_path) as t:
        assert f"blobs/sha256/{layer.hex}" in t.getnames()
