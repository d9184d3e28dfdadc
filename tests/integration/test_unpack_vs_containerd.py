"""Unpacking against containerd: a pulled image ends as a chain of committed overlay snapshots, and the
tree a read-only view of it shows must be what containerd's overlayfs snapshotter shows for the same
image, entry by entry (type, mode, owner, size, content, link target, device numbers, xattrs, hardlink
groups). Plus the pipeline itself: snapshots listed and removed, gc, deep images, a killed unpacker.

Runs as root on the real stack (conftest), with a private containerd (berthtest/containerd.py)."""
import hashlib
import json
import os
import re
import signal
import stat
import subprocess

import pytest

from berthtest import stack
from berthtest.cli import ImageView, inspect, snapshots
from berthtest.containerd import Containerd
from berthtest.fixtures import registry, require_tools  # noqa: F401
from berthtest.images import (Device, Dir, Fifo, File, Hardlink, ImageBuilder, Opaque, Symlink,
                              Whiteout)
from berthtest.stack import berthctl

# security.capability v2 for cap_net_raw+ep
CAP_NET_RAW_EP = b"\x01\x00\x00\x02\x00\x20\x00\x00" + b"\x00" * 12


# --------------------------------------------------------------------------
# helpers


def snapshot_tree(root):
    """{relative path: description} of everything under root (not following symlinks), and the
    hardlink groups (sets of paths sharing an inode, for regular files with more than one link)."""
    root = str(root)
    entries, by_inode = {}, {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [None] + dirnames + filenames:
            path = dirpath if name is None else os.path.join(dirpath, name)
            if name is None and dirpath != root:
                continue
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            d = {"type": stat.S_IFMT(st.st_mode), "mode": oct(stat.S_IMODE(st.st_mode)),
                 "uid": st.st_uid, "gid": st.st_gid}
            if stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                d["size"], d["sha256"] = st.st_size, h.hexdigest()
                if st.st_nlink > 1:
                    by_inode.setdefault((st.st_dev, st.st_ino), set()).add(rel)
            elif stat.S_ISLNK(st.st_mode):
                d["target"] = os.readlink(path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                d["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            if not stat.S_ISLNK(st.st_mode):
                xa = {}
                for k in os.listxattr(path, follow_symlinks=False):
                    if k.startswith("trusted.overlay."):
                        continue
                    xa[k] = os.getxattr(path, k, follow_symlinks=False).hex()
                if xa:
                    d["xattrs"] = xa
            entries[rel] = d
    groups = sorted(sorted(g) for g in by_inode.values() if len(g) > 1)
    return entries, groups


def diff_trees(a, b):
    (ea, ga), (eb, gb) = a, b
    out = []
    for k in sorted(set(ea) | set(eb)):
        if ea.get(k) != eb.get(k):
            out.append(f"{k}: berth={ea.get(k)} containerd={eb.get(k)}")
    if ga != gb:
        out.append(f"hardlink groups: berth={ga} containerd={gb}")
    return out


@pytest.fixture(scope="module")
def containerd(tmp_path_factory):
    require_tools("containerd", "ctr")
    with Containerd(tmp_path_factory.mktemp("ctrd")) as c:
        yield c


def pull(ref, *extra):
    p = berthctl("images", "pull", *extra, ref, timeout=1800)
    assert p.returncode == 0, f"pull failed:\n{p.stdout}\n{p.stderr}"
    return p


def compare_with_containerd(ref, containerd, tmp_path):
    pull(ref)
    containerd.pull(ref)
    with ImageView(ref, tmp_path / "berth") as bv:
        ours = snapshot_tree(bv)
    ctr_dir = tmp_path / "ctr"
    ctr_dir.mkdir()
    containerd.mount(ref, ctr_dir)
    try:
        theirs = snapshot_tree(ctr_dir)
    finally:
        containerd.unmount(ctr_dir)
    problems = diff_trees(ours, theirs)
    assert not problems, "trees differ:\n" + "\n".join(problems)
    return ours


# --------------------------------------------------------------------------
# the layers: delete, replace and re-add files and directories, dir → file → dir, opaque dirs,
# whiteouts of dirs, symlink changes, hardlinks, devices, fifos, xattrs, owners, modes, setuid


def layer1():
    return [
        Dir("etc"), File("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), File("etc/hosts", "127.0.0.1 localhost\n"),
        File("etc/shadow", "root:*::0:::::\n", mode=0o640, gid=42),
        Dir("usr"), Dir("usr/bin"), Dir("usr/lib"),
        File("usr/bin/tool", "#!/bin/sh\necho tool\n", mode=0o4755),
        File("usr/bin/sgid", "x", mode=0o2711, gid=7),
        File("usr/bin/ping", "ping", mode=0o755, xattrs={"security.capability": CAP_NET_RAW_EP}),
        File("usr/lib/libx.so.1", b"\x7fELF" + bytes(range(256)) * 40, mode=0o755),
        Symlink("usr/lib/libx.so", "libx.so.1"),
        Symlink("lib", "usr/lib"), Symlink("bin", "usr/bin"),
        File("usr/bin/a", "hardlinked", mode=0o711, uid=3, gid=4), Hardlink("usr/bin/b", "usr/bin/a"),
        Dir("dev"), Device("dev/null", "c", 1, 3, mode=0o666), Device("dev/sda", "b", 8, 0, mode=0o660, gid=6),
        Dir("run"), Fifo("run/fifo", mode=0o600, uid=1000, gid=1000),
        Dir("var"), Dir("var/empty", mode=0o700, uid=5, gid=5),
        Dir("data", mode=0o750, uid=1000, gid=1000, xattrs={"user.purpose": "data"}),
        File("data/user-file", "mine", mode=0o600, uid=1000, gid=1000, xattrs={"user.a": "1", "user.b": "two"}),
        Dir("old"), File("old/a", "a"), Dir("old/sub"), File("old/sub/b", "b"),
        Dir("opq", mode=0o711, uid=2), File("opq/x", "x"), File("opq/y", "y"),
        File("f2d", "was a file"),
        Dir("d2f"), File("d2f/inner", "inner"),
        Symlink("link1", "etc/passwd"),
        Dir("impl", mode=0o700, uid=7, gid=8, xattrs={"user.impl": "yes"}),
        Dir("impl/deeper", mode=0o750, uid=9, gid=9),
        Dir("sticky", mode=0o1777),
        File("gone-later", "bye"),
    ]


def layer2():
    return [
        Whiteout("old"),                       # a whole directory
        Opaque("opq"), File("opq/z", "z"),     # opaque: x and y hidden
        Dir("f2d", mode=0o755), File("f2d/child", "child"),  # file → dir
        File("d2f", "now a file", mode=0o600),                # dir → file
        Symlink("link1", "usr/bin/tool"),      # symlink retargeted
        File("etc/passwd", "root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n"),
        Whiteout("etc/hosts"),
        File("impl/newfile", "implied parent"),             # parent only in the layer below
        File("impl/deeper/more/file", "two implied levels"),
        File("lib/x", "through a lower-layer symlink"),     # lib -> usr/lib lives in layer 1
        File("usr/bin/cnew", "new", mode=0o755), Hardlink("usr/bin/c", "usr/bin/cnew"),
        File("data/user-file", "changed", mode=0o640, uid=1000, gid=1000, xattrs={"user.a": "changed"}),
        Fifo("run/fifo2"),
        Whiteout("gone-later"),
        File("usr/bin/tool", "#!/bin/sh\necho tool v2\n", mode=0o4750, gid=10),
    ]


def layer3():
    return [
        Dir("old"), File("old/new", "re-added"),            # re-add a deleted directory
        File("f2d", "a file again"),                        # dir → file
        Dir("d2f", mode=0o711), File("d2f/again", "again"),  # file → dir
        File("gone-later", "back"),                         # re-add a deleted file
        Device("dev/zero", "c", 1, 5), Whiteout("dev/sda"),
        Opaque("var/empty"),                                # opaque on a dir with nothing below
        File("sticky/f", "s", uid=1000),
    ]


def build_image(builder, compressions, tag):
    layers = [builder.add_layer(entries, compression=c)
              for entries, c in zip((layer1(), layer2(), layer3()), compressions)]
    return builder.add_image(layers, tag=tag, cmd=["/bin/sh"])


@pytest.mark.parametrize("media_types,compressions", [
    ("oci", ("gzip", "zstd", "none")),
    ("oci", ("zstd", "none", "gzip")),
    ("docker", ("gzip", "none", "gzip")),
])
def test_tree_matches_containerd(registry, containerd, tmp_path, media_types, compressions):
    b = ImageBuilder(tmp_path / "layout", media_types=media_types)
    build_image(b, compressions, "v1")
    repo = f"unpack/{media_types}-{'-'.join(compressions)}:v1"
    registry.push(b.layout_dir, "v1", repo)
    ref = f"{registry.host}/{repo}"
    try:
        tree, _ = compare_with_containerd(ref, containerd, tmp_path)
        # A few spot checks on top of the comparison, so a shared bug cannot hide.
        assert "old/a" not in tree and tree["old/new"]["type"] == stat.S_IFREG
        assert "opq/x" not in tree and "opq/z" in tree
        assert tree["f2d"]["type"] == stat.S_IFREG and tree["d2f"]["type"] == stat.S_IFDIR
        assert tree["link1"]["target"] == "usr/bin/tool"
        assert tree["usr/bin/tool"]["mode"] == oct(0o4750)
        assert "etc/hosts" not in tree and tree["gone-later"]["sha256"] == hashlib.sha256(b"back").hexdigest()
        assert tree["dev/zero"]["rdev"] == (1, 5) and "dev/sda" not in tree
        assert tree["usr/bin/ping"]["xattrs"]["security.capability"] == CAP_NET_RAW_EP.hex()

        # The image record: chain ids and unpacked; each chain id is a committed snapshot.
        doc = inspect(ref)
        plat = doc["platforms"][0]
        assert plat["unpacked"] is True
        snaps = snapshots()
        assert plat["chain_ids"], plat
        for i, cid in enumerate(plat["chain_ids"]):
            assert cid in snaps, cid
            assert snaps[cid]["parent"] == (plat["chain_ids"][i - 1] if i else "")
            assert ref in snaps[cid]["images"]
    finally:
        berthctl("images", "rm", ref)
        # Snapshots are named by chain id (diff_ids only): without gc the next variant would reuse them.
        berthctl("content", "gc")
        containerd.ctr("images", "rm", ref)


def test_symlink_in_lower_layer_and_implied_parents(registry, containerd, tmp_path):
    """containerd resolves a missing parent through the layers below (its mkparent: the first lower
    snapshot holding the path, symlinks resolved inside that snapshot) and copies that directory's
    mode, owner and xattrs; berth must produce the same."""
    b = ImageBuilder(tmp_path / "layout")
    l1 = b.add_layer([Dir("usr", mode=0o751, uid=11), Dir("usr/lib", mode=0o705, uid=12, gid=13,
                                                           xattrs={"user.x": "lib"}),
                      Symlink("lib", "usr/lib"), Symlink("abs", "/usr/lib"),
                      Dir("a", mode=0o700, uid=1), Dir("a/b", mode=0o710, uid=2)])
    l2 = b.add_layer([File("lib/x", "x"), File("abs/y", "y"), File("a/b/c/d", "d")], compression="zstd")
    b.add_image([l1, l2], tag="v1")
    registry.push(b.layout_dir, "v1", "unpack/lowerlink:v1")
    ref = f"{registry.host}/unpack/lowerlink:v1"
    try:
        tree, _ = compare_with_containerd(ref, containerd, tmp_path)
        assert tree["lib"]["type"] == stat.S_IFDIR
        assert tree["a/b"]["mode"] == oct(0o710) and tree["a/b"]["uid"] == 2
    finally:
        berthctl("images", "rm", ref)
        # Snapshots are named by chain id (diff_ids only): without gc the next variant would reuse them.
        berthctl("content", "gc")
        containerd.ctr("images", "rm", ref)


# --------------------------------------------------------------------------
# the pipeline


def test_progress_states_and_no_unpack(registry, tmp_path):
    b = ImageBuilder(tmp_path / "layout")
    layers = [b.add_layer([File(f"f{i}", os.urandom(256 * 1024))]) for i in range(3)]
    img = b.add_image(layers, tag="v1")
    registry.push(b.layout_dir, "v1", "unpack/states:v1")
    ref = f"{registry.host}/unpack/states:v1"
    try:
        p = pull(ref, "--no-unpack")
        assert " unpacking" not in p.stdout and " unpacked" not in p.stdout, p.stdout
        doc = inspect(ref)
        assert doc["platforms"][0]["unpacked"] is False
        assert not set(doc["platforms"][0]["chain_ids"]) & set(snapshots())
        mp = tmp_path / "mnt"
        mp.mkdir()
        p = berthctl("images", "mount", ref, str(mp))
        assert p.returncode != 0 and "not unpacked" in p.stderr, p.stderr

        p = pull(ref)
        out = p.stdout
        for l in img.layers:
            assert f"{l.digest} unpacked" in out, out
        doc = inspect(ref)
        assert doc["platforms"][0]["unpacked"] is True
        assert set(doc["platforms"][0]["chain_ids"]) <= set(snapshots())

        # Again: everything committed already, nothing unpacked twice (Unpack not even called).
        p = pull(ref)
        assert " unpacking" not in p.stdout, p.stdout
    finally:
        berthctl("images", "rm", ref)
        berthctl("content", "gc")


def test_all_platforms_unpacks_only_this_machines(registry, tmp_path):
    from berthtest.images import native_platform
    native = native_platform()
    native_s = f"{native['os']}/{native['architecture']}"
    other = "linux/arm64" if native["architecture"] != "arm64" else "linux/amd64"
    b = ImageBuilder(tmp_path / "layout")
    b.multi_arch_index({native_s: [b.add_layer([File("arch", native_s)])],
                              other: [b.add_layer([File("arch", other)], compression="zstd")]}, tag="multi")
    registry.push_all(b.layout_dir, "multi", "unpack/multi:v1")
    ref = f"{registry.host}/unpack/multi:v1"
    try:
        pull(ref, "--all-platforms")
        doc = inspect(ref)
        by = {p["platform"]: p for p in doc["platforms"]}
        assert by[native_s]["unpacked"] is True and by[other]["unpacked"] is False, by
        snaps = snapshots()
        assert set(by[native_s]["chain_ids"]) <= set(snaps)
        assert not set(by[other]["chain_ids"]) & set(snaps)
        with ImageView(ref, tmp_path / "view") as v:
            assert (v / "arch").read_text() == native_s
    finally:
        berthctl("images", "rm", ref)
        berthctl("content", "gc")


def test_unknown_flags_refused():
    p = stack.busctl("call", "org.berth.Broker1", "/org/berth/Broker1", "org.berth.Broker1.Manager",
                     "PullImage", "sst", "busybox", "", "4")
    assert p.returncode != 0 and "flags" in p.stderr.lower(), p.stderr


def test_snapshots_rm_refusals_and_gc(registry, tmp_path):
    b = ImageBuilder(tmp_path / "layout")
    base = b.add_layer([File("base", "base")])
    top1 = b.add_layer([File("one", "1")])
    top2 = b.add_layer([File("two", "2")], compression="zstd")
    b.add_image([base, top1], tag="one")
    b.add_image([base, top2], tag="two")
    registry.push(b.layout_dir, "one", "unpack/gc:one")
    registry.push(b.layout_dir, "two", "unpack/gc:two")
    r1, r2 = f"{registry.host}/unpack/gc:one", f"{registry.host}/unpack/gc:two"
    try:
        pull(r1)
        pull(r2)
        c1, c2 = inspect(r1)["platforms"][0]["chain_ids"], inspect(r2)["platforms"][0]["chain_ids"]
        assert c1[0] == c2[0]
        snaps = snapshots()
        assert set(snaps[c1[0]]["images"]) == {r1, r2}

        p = berthctl("snapshots", "info", c1[1])
        assert p.returncode == 0, p.stderr
        info = json.loads(p.stdout)
        assert info["parent"] == c1[0] and info["images"] == [r1] and info["depth"] == 2

        # Used by an image: refused, with the image named.
        p = berthctl("snapshots", "rm", c1[1])
        assert p.returncode != 0 and r1 in p.stderr, p.stderr
        p = berthctl("snapshots", "rm", "sha256:" + "0" * 64)
        assert p.returncode != 0 and "No snapshot" in p.stderr, p.stderr
        p = berthctl("snapshots", "rm", "nonsense")
        assert p.returncode != 0

        # Usage: the base is shared, the tops are unique.
        p = berthctl("images", "usage", "--json")
        assert p.returncode == 0, p.stderr
        usage = {u["reference"]: u for u in json.loads(p.stdout)}
        assert usage[r1]["shared_size"] > 0 and usage[r1]["unique_size"] > 0
        assert usage[r1]["unpacked_size"] == snaps[c1[0]]["size"] + snaps[c1[1]]["size"]

        # Mounted view: gc keeps its snapshots even when no image uses them.
        mp = tmp_path / "view"
        with ImageView(r1, mp):
            assert (mp / "one").read_text() == "1"
            berthctl("images", "rm", r1, check=True)
            p = berthctl("content", "gc")
            assert p.returncode == 0, p.stderr
            snaps = snapshots()
            assert c1[1] in snaps and c1[0] in snaps
            p = berthctl("snapshots", "rm", c1[1])
            assert p.returncode != 0 and "mounted" in p.stderr, p.stderr
        p = berthctl("content", "gc")
        assert p.returncode == 0, p.stderr
        snaps = snapshots()
        assert c1[1] not in snaps and c1[0] in snaps and c2[1] in snaps

        # A parent cannot go without its children; both together can (after the image is gone).
        berthctl("images", "rm", r2, check=True)
        p = berthctl("snapshots", "rm", c2[0])
        assert p.returncode != 0, p.stdout
        p = berthctl("snapshots", "rm", c2[1], c2[0])
        assert p.returncode == 0, p.stderr
        assert not {c2[0], c2[1]} & set(snapshots())
    finally:
        berthctl("images", "rm", r1)
        berthctl("images", "rm", r2)
        berthctl("content", "gc")


def test_mount_needs_maintenance(registry, tmp_path, member):
    b = ImageBuilder(tmp_path / "layout")
    b.add_image([b.add_layer([File("f", "f")])], tag="v1")
    registry.push(b.layout_dir, "v1", "unpack/perm:v1")
    ref = f"{registry.host}/unpack/perm:v1"
    try:
        pull(ref)
        mp = tmp_path / "m"
        mp.mkdir()
        os.chmod(tmp_path, 0o755)
        os.chown(mp, stack.pwd.getpwnam(member).pw_uid, -1)
        p = berthctl("images", "mount", ref, str(mp), user=member)
        assert p.returncode != 0 and "permission denied" in p.stderr.lower(), p.stderr
        p = berthctl("snapshots", "ls", user=member)
        assert p.returncode == 0, p.stderr
    finally:
        berthctl("images", "rm", ref)
        berthctl("content", "gc")


def test_deep_image(registry, tmp_path):
    """More layers than fit one page of overlay mount options."""
    n = 70
    b = ImageBuilder(tmp_path / "layout")
    layers = [b.add_layer([Dir(f"layer-{i:03d}"), File(f"layer-{i:03d}/file", f"{i}\n"),
                           File("top", f"{i}\n")], compression="none") for i in range(n)]
    b.add_image(layers, tag="deep")
    registry.push(b.layout_dir, "deep", "unpack/deep:v1")
    ref = f"{registry.host}/unpack/deep:v1"
    try:
        pull(ref)
        chain = inspect(ref)["platforms"][0]["chain_ids"]
        assert len(chain) == n and set(chain) <= set(snapshots())
        with ImageView(ref, tmp_path / "view") as v:
            for i in range(n):
                assert (v / f"layer-{i:03d}" / "file").read_text() == f"{i}\n"
            assert (v / "top").read_text() == f"{n - 1}\n"
    finally:
        berthctl("images", "rm", ref)


class _Zeros:
    def __init__(self, n):
        self.left = n

    def read(self, n=-1):
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def test_killed_unpacker_mid_unpack_the_pull_completes(registry, tmp_path):
    """kill -9 of the unpacker while it unpacks a big layer: the broker starts it again and unpacks the
    layer anew (the killed job's work dir is discarded, never committed), the progress says
    "retrying", and the pull completes with the right tree."""
    size = 768 << 20
    b = ImageBuilder(tmp_path / "layout")
    small = b.add_layer([File("small", "small")])
    big = b.add_layer([Dir("big"), File("big/zeros", stream=(size, _Zeros(size))),
                       *[File(f"big/f{i}", str(i)) for i in range(2000)]], compresslevel=1)
    img = b.add_image([small, big], tag="v1")
    registry.push(b.layout_dir, "v1", "unpack/kill:v1")
    ref = f"{registry.host}/unpack/kill:v1"
    try:
        # The layers are fetched first, so that only the unpack is left to race with.
        pull(ref, "--no-unpack")
        chain = inspect(ref)["platforms"][0]["chain_ids"]
        puller = subprocess.Popen([str(stack.BERTHCTL), "--no-ask-password", "images", "pull", ref],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        unpacker = stack.wait_for(lambda: stack.name_pid("org.berth.Unpacker1"), what="the unpacker")

        def unpacking_big():
            # The big layer's child is running once the small one is committed.
            return chain[0] in snapshots() and subprocess.run(
                ["pgrep", "-P", str(unpacker)], capture_output=True).returncode == 0
        stack.wait_for(unpacking_big, timeout=120, interval=0.01, what="the big layer's unpack")
        assert chain[1] not in snapshots()
        os.kill(unpacker, signal.SIGKILL)
        out, err = puller.communicate(timeout=600)
        assert puller.returncode == 0, err
        assert out.strip().splitlines()[-1] == f"{ref}: {img.manifest.digest}", out
        # The progress said so: the big layer's row went through "retrying".
        assert re.search(rf"^{re.escape(big.digest)} retrying\b", out, re.M), out
        assert not stack.pid_alive(unpacker)

        assert chain[1] in snapshots() and chain[0] in snapshots()
        assert inspect(ref)["platforms"][0]["unpacked"] is True
        with ImageView(ref, tmp_path / "view") as v:
            assert (v / "big" / "zeros").stat().st_size == size
            assert (v / "big" / "f1999").read_text() == "1999"
            assert (v / "small").read_text() == "small"
    finally:
        berthctl("images", "rm", ref)
        berthctl("content", "gc")
