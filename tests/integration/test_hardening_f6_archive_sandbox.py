"""Issue 12, finding 6: the fetcher's archive child (it parses hostile import archives) is sandboxed like
the unpack worker: no network, its own mount namespace with nothing in it, no capabilities,
no_new_privs, a seccomp allow-list that kills, and only the descriptors it needs.

The import reads from a pipe the test holds open, so the child is alive (and inspectable) for exactly as
long as the test needs.
"""
import os
import subprocess
from pathlib import Path

from berthtest.cli import images, tar_dir
from berthtest.fixtures import *  # noqa: F401,F403
from berthtest.images import ImageBuilder, File
from berthtest.sandboxchild import sandboxed_child
from berthtest.stack import BERTHCTL, berthctl, name_pid


def test_hardening_f6_archive_child_sandbox(tmp_path):
    b = ImageBuilder(tmp_path / "layout")
    layer = b.add_layer([File("f6", b"sandboxed import\n")])
    img = b.add_image([layer], tag="localhost/f6/import:v1")
    archive = Path(tar_dir(tmp_path / "layout", tmp_path / "f6.tar")).read_bytes()

    p = subprocess.Popen([str(BERTHCTL), "--no-ask-password", "images", "import", "--no-unpack", "-"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        fetcher = name_pid("org.berth.Fetcher1")
        assert fetcher
        pid, st = sandboxed_child(fetcher)
        assert st["NoNewPrivs"].strip() == "1"
        assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0
        assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink(f"/proc/{fetcher}/ns/net"), "shares the network"
        assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink(f"/proc/{fetcher}/ns/mnt")
        # Its root is an empty file system: no host path is reachable.
        assert os.listdir(f"/proc/{pid}/root") == []
        targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        assert not [t for t in targets if t.startswith("socket:")], f"the child holds sockets: {targets}"
        assert any(t.startswith("pipe:") for t in targets), targets  # the user's stream
    finally:
        out, err = p.communicate(archive, timeout=300)
    assert p.returncode == 0, err
    assert out.decode().strip() == f"localhost/f6/import:v1: {img.manifest.digest}"
    assert images()["localhost/f6/import:v1"]["digest"] == img.manifest.digest
    berthctl("images", "rm", "localhost/f6/import:v1")
