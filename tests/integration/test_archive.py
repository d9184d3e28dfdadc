"""berthctl images import / export: OCI layout archives and docker save tarballs, through the real stack.

Archives travel as file descriptors (berthctl opens FILE, the broker passes the fd on, the fetcher reads or
writes it); the fetcher parses them as hostile input. Exports are checked with independent readers:
skopeo (oci-archive:) and containerd (ctr images import into a private containerd)."""
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from berthtest.cli import content, images, inspect, tar_dir
from berthtest.containerd import Containerd
from berthtest.fixtures import *  # noqa: F401,F403  (registry, image_builder, busybox_layout)
from berthtest.fixtures import require_tools
from berthtest.images import ImageBuilder, busybox_rootfs_layer, File, Dir, write_tar, native_platform
from berthtest.stack import berthctl, BERTHCTL


# ---- helpers ------------------------------------------------------------------------------------------

def tar_members(out, members, mode="w"):
    """Write a tar from (TarInfo, bytes-or-None) pairs."""
    with tarfile.open(out, mode, format=tarfile.PAX_FORMAT) as t:
        for ti, data in members:
            if data is not None:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)
    return str(out)


def reg(name, data):
    ti = tarfile.TarInfo(name)
    ti.mode, ti.mtime = 0o644, 1700000000
    return ti, data


def symlink(name, target):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, target, 0o777
    return ti, None


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def import_archive(path, *args, user=None):
    """berthctl images import, the archive on stdin when a user runs it (they cannot read our tmp_path)."""
    if user:
        with open(path, "rb") as f:
            return subprocess.run(["runuser", "-u", user, "--", str(BERTHCTL), "--no-ask-password", "images",
                                   "import", *args, "-"], stdin=f, capture_output=True, text=True, timeout=300)
    return berthctl("images", "import", *args, str(path))


def rm(*refs):
    for r in refs:
        berthctl("images", "rm", r)


@pytest.fixture
def busybox_oci(tmp_path):
    b = ImageBuilder(tmp_path / "layout")
    layer = b.add_layer(busybox_rootfs_layer())
    img = b.add_image([layer], cmd=["/bin/sh"], tag="localhost/archive/busybox:1")
    return tmp_path / "layout", img


def docker_save_tar(tmp_path, repo_tags, cmd=("/bin/echo", "hi"), dup_layer_as_symlink=True, extra=()):
    """A `docker save` tarball, docker's classic format: <id>/layer.tar (+ json, VERSION), <config>.json,
    manifest.json, repositories. A repeated layer is a symlink to the first copy, as docker writes it."""
    l1 = io.BytesIO()
    write_tar(busybox_rootfs_layer(), l1)
    l2 = io.BytesIO()
    write_tar([Dir("etc"), File("etc/motd", b"docker save\n")], l2)
    layers = [l1.getvalue(), l2.getvalue(), l1.getvalue()]
    diff_ids = [sha(l) for l in layers]
    plat = native_platform()
    config = {"architecture": plat["architecture"], "os": plat["os"], "created": "2023-11-14T22:13:20Z",
              "config": {"Cmd": list(cmd), "Env": ["PATH=/bin"], "WorkingDir": "/"},
              "rootfs": {"type": "layers", "diff_ids": diff_ids},
              "history": [{"created": "2023-11-14T22:13:20Z"} for _ in layers]}
    config_bytes = json.dumps(config).encode()
    config_id = hashlib.sha256(config_bytes).hexdigest()
    members, paths = [], []
    for i, data in enumerate(layers):
        lid = hashlib.sha256(("layer%d" % i).encode()).hexdigest()
        members.append((tarfile.TarInfo(lid), None))
        members[-1][0].type, members[-1][0].mode = tarfile.DIRTYPE, 0o755
        members.append(reg(lid + "/VERSION", b"1.0"))
        members.append(reg(lid + "/json", json.dumps({"id": lid}).encode()))
        if i == 2 and dup_layer_as_symlink:
            members.append(symlink(lid + "/layer.tar", "../" + paths[0].split("/")[0] + "/layer.tar"))
        else:
            members.append(reg(lid + "/layer.tar", data))
        paths.append(lid + "/layer.tar")
    members.append(reg(config_id + ".json", config_bytes))
    members.extend(extra)
    manifest = [{"Config": config_id + ".json", "RepoTags": list(repo_tags), "Layers": paths}]
    members.append(reg("manifest.json", json.dumps(manifest).encode()))
    members.append(reg("repositories", b"{}"))
    return tar_members(tmp_path / "docker-save.tar", members), sha(config_bytes), layers


# ---- import ----------------------------------------------------------------------------------------------

def test_import_oci_archive(tmp_path, busybox_oci):
    layout, img = busybox_oci
    archive = tar_dir(layout, tmp_path / "oci.tar")
    ref = "localhost/archive/busybox:1"
    try:
        p = import_archive(archive)
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == f"{ref}: {img.manifest.digest}"
        listed = images()
        assert listed[ref]["digest"] == img.manifest.digest
        doc = inspect(ref)
        plat = doc["platforms"][0]
        assert plat["config"]["digest"] == img.config.digest
        assert [l["digest"] for l in plat["layers"]] == [l.digest for l in img.layers]
        assert plat["image_config"]["cmd"] == ["/bin/sh"]
        blobs = content()
        for d in (img.manifest.digest, img.config.digest, *(l.digest for l in img.layers)):
            assert ref in blobs[d]["references"]
    finally:
        rm(ref)


def test_import_gzip_oci_archive(tmp_path, busybox_oci):
    layout, img = busybox_oci
    archive = tar_dir(layout, tmp_path / "oci.tar.gz", compression="gz")
    with open(archive, "rb") as f:
        assert f.read(2) == b"\x1f\x8b"
    ref = "localhost/archive/busybox:1"
    try:
        p = import_archive(archive)
        assert p.returncode == 0, p.stderr
        assert images()[ref]["digest"] == img.manifest.digest
    finally:
        rm(ref)


def test_import_docker_save(tmp_path):
    archive, config_digest, layers = docker_save_tar(tmp_path, ["localhost/dsave:v1", "dsave-short:v2"])
    refs = ["localhost/dsave:v1", "docker.io/library/dsave-short:v2"]
    try:
        p = import_archive(archive)
        assert p.returncode == 0, p.stderr
        lines = dict(l.split(": ", 1) for l in p.stdout.strip().splitlines())
        assert set(lines) == set(refs), p.stdout
        assert len(set(lines.values())) == 1  # one synthesised manifest, two names
        listed = images()
        for r in refs:
            assert listed[r]["digest"] == lines[r]
            assert listed[r]["media_type"] == "application/vnd.oci.image.manifest.v1+json"
        doc = inspect(refs[0])
        plat = doc["platforms"][0]
        assert plat["config"]["digest"] == config_digest
        assert plat["config"]["media_type"] == "application/vnd.oci.image.config.v1+json"
        assert len(plat["layers"]) == 3
        assert [l["digest"] for l in plat["layers"]] == [sha(l) for l in layers]
        assert all(l["media_type"] == "application/vnd.oci.image.layer.v1.tar" for l in plat["layers"])
        assert [l["diff_id"] for l in plat["layers"]] == [sha(l) for l in layers]
        assert plat["image_config"]["cmd"] == ["/bin/echo", "hi"]
    finally:
        rm(*refs)


def test_import_bare_tag_needs_name(tmp_path):
    b = ImageBuilder(tmp_path / "layout")
    layer = b.add_layer([File("hello", b"bare tag\n")])
    img = b.add_image([layer], tag="latest")
    archive = tar_dir(tmp_path / "layout", tmp_path / "bare.tar")
    p = import_archive(archive)
    assert p.returncode != 0
    assert "--name" in p.stderr and "latest" in p.stderr, p.stderr
    try:
        p = import_archive(archive, "--name", "localhost/foo")
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == f"localhost/foo:latest: {img.manifest.digest}"
        assert images()["localhost/foo:latest"]["digest"] == img.manifest.digest
    finally:
        rm("localhost/foo:latest")


def test_import_unnamed_refused_without_name(tmp_path):
    b = ImageBuilder(tmp_path / "layout")
    layer = b.add_layer([File("hello", b"no name\n")])
    img = b.add_image([layer])
    b._index["manifests"].append({"mediaType": img.manifest.media_type, "digest": img.manifest.digest,
                                  "size": img.manifest.size})
    b._write_index()
    archive = tar_dir(tmp_path / "layout", tmp_path / "unnamed.tar")
    p = import_archive(archive)
    assert p.returncode != 0
    assert "no name" in p.stderr and "--name" in p.stderr, p.stderr
    try:
        p = import_archive(archive, "--name", "localhost/unnamed:v3")
        assert p.returncode == 0, p.stderr
        assert images()["localhost/unnamed:v3"]["digest"] == img.manifest.digest
    finally:
        rm("localhost/unnamed:v3")


def test_import_refuses_blob_not_matching_its_name(tmp_path, busybox_oci):
    layout, img = busybox_oci
    claimed = sha(os.urandom(32))
    shutil.copy(layout / "blobs" / "sha256" / img.config.hex, layout / "blobs" / "sha256" / claimed.split(":")[1])
    archive = tar_dir(layout, tmp_path / "bad.tar")
    p = import_archive(archive)
    assert p.returncode != 0
    assert "does not match its name" in p.stderr, p.stderr
    assert claimed not in content()
    assert "localhost/archive/busybox:1" not in images()


def test_import_refuses_dotdot_entries(tmp_path, busybox_oci):
    layout, _ = busybox_oci
    archive = tar_dir(layout, tmp_path / "dotdot.tar")
    with tarfile.open(archive, "a") as t:
        ti, data = reg("../escape", b"x")
        ti.size = 1
        t.addfile(ti, io.BytesIO(data))
    p = import_archive(archive)
    assert p.returncode != 0
    assert "Refusing archive entry '../escape'" in p.stderr, p.stderr
    absolute = tar_members(tmp_path / "abs.tar", [reg("/etc/passwd", b"x")])
    p = import_archive(absolute)
    assert p.returncode != 0 and "Refusing archive entry" in p.stderr, p.stderr


def test_import_refuses_symlink_escape(tmp_path):
    archive, _, _ = docker_save_tar(tmp_path, ["localhost/escape:1"], dup_layer_as_symlink=False)
    # Rewrite the first layer as a symlink out of the archive.
    with tarfile.open(archive) as t:
        members = [(m, t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()]
    first = json.loads(dict((m.name, d) for m, d in members)["manifest.json"])[0]["Layers"][0]
    members = [(m, d) if m.name != first else symlink(first, "../../../../etc/passwd") for m, d in members]
    evil = tar_members(tmp_path / "evil.tar", members)
    p = import_archive(evil)
    assert p.returncode != 0
    assert "leaves the archive" in p.stderr, p.stderr
    assert "localhost/escape:1" not in images()


def test_import_refuses_oversized_index(tmp_path):
    big = b'{"schemaVersion":2,"manifests":[]}' + b" " * (4 * 1024 * 1024)
    archive = tar_members(tmp_path / "big.tar", [reg("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                                                 reg("index.json", big)])
    p = import_archive(archive)
    assert p.returncode != 0
    assert "index.json" in p.stderr and "limit" in p.stderr, p.stderr


def test_import_refuses_non_tar(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(64 * 1024))
    p = import_archive(junk)
    assert p.returncode != 0
    assert "Not a readable tar archive" in p.stderr, p.stderr
    empty_json = tmp_path / "notar.json"
    empty_json.write_text('{"hello": "world"}\n' * 100)
    p = import_archive(empty_json)
    assert p.returncode != 0 and "Not a readable tar archive" in p.stderr, (p.stdout, p.stderr)


def test_import_is_admin_only(tmp_path, member, busybox_oci):
    layout, img = busybox_oci
    archive = tar_dir(layout, tmp_path / "oci.tar")
    p = import_archive(archive, user=member)
    assert p.returncode != 0
    assert "permission denied" in p.stderr and "org.berth.image-import" in p.stderr, p.stderr
    assert "localhost/archive/busybox:1" not in images()
    try:
        p = import_archive(archive)  # root
        assert p.returncode == 0, p.stderr
    finally:
        rm("localhost/archive/busybox:1")


# ---- export ------------------------------------------------------------------------------------------

@pytest.fixture
def pulled(registry, busybox_layout):
    layout, img = busybox_layout
    registry.push(layout, "latest", "archive/busybox:latest")
    ref = f"{registry.host}/archive/busybox:latest"
    p = berthctl("images", "pull", ref)
    assert p.returncode == 0, p.stderr
    yield ref, img
    rm(ref)


def test_export_then_skopeo(tmp_path, pulled):
    ref, img = pulled
    out = tmp_path / "export.tar"
    p = berthctl("images", "export", ref, str(out))
    assert p.returncode == 0, p.stderr
    with tarfile.open(out) as t:
        names = t.getnames()
        assert names == sorted(names)
        assert {"oci-layout", "index.json", f"blobs/sha256/{img.manifest.hex}"} <= set(names)
        for m in t.getmembers():
            assert m.mtime == 0 and m.uid == 0 and m.gid == 0
            assert m.mode == (0o755 if m.isdir() else 0o644)
        index = json.loads(t.extractfile("index.json").read())
    ann = index["manifests"][0]["annotations"]
    assert ann["io.containerd.image.name"] == ref and ann["org.opencontainers.image.ref.name"] == ref
    p = subprocess.run(["skopeo", "inspect", f"oci-archive:{out}"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["Digest"] == img.manifest.digest
    dest = tmp_path / "copy"
    p = subprocess.run(["skopeo", "copy", f"oci-archive:{out}", f"oci:{dest}:x"], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    copied = json.loads((dest / "index.json").read_text())
    assert copied["manifests"][0]["digest"] == img.manifest.digest
    # Deterministic: the same image exports to the same bytes.
    out2 = tmp_path / "export2.tar"
    assert berthctl("images", "export", ref, str(out2)).returncode == 0
    assert out.read_bytes() == out2.read_bytes()


@pytest.fixture
def containerd():
    """A private containerd (berthtest/containerd.py); one that does not come up fails the test."""
    require_tools("containerd", "ctr")
    with Containerd() as c:
        yield c


def test_export_then_ctr_import(tmp_path, pulled, containerd):
    ref, img = pulled
    out = tmp_path / "export.tar"
    p = berthctl("images", "export", ref, str(out))
    assert p.returncode == 0, p.stderr
    p = containerd.ctr("images", "import", "--no-unpack", str(out), timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    p = containerd.ctr("images", "ls", timeout=60)
    assert p.returncode == 0, p.stderr
    rows = [l.split() for l in p.stdout.splitlines()[1:]]
    assert any(r[0] == ref and img.manifest.digest in r for r in rows), p.stdout


def test_export_rm_gc_import_round_trip(tmp_path, pulled):
    ref, img = pulled
    out = tmp_path / "export.tar"
    assert berthctl("images", "export", ref, str(out)).returncode == 0
    assert berthctl("images", "rm", ref).returncode == 0
    assert berthctl("content", "gc").returncode == 0
    # After rm + gc the layer is either gone or kept only for other images, never for ref.
    layer = content().get(img.layers[0].digest)
    assert layer is None or (layer["references"] and ref not in layer["references"]), layer
    p = import_archive(out)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"{ref}: {img.manifest.digest}"
    assert images()[ref]["digest"] == img.manifest.digest
    assert {img.manifest.digest, img.config.digest, img.layers[0].digest} <= set(content())


def test_export_to_stdout(tmp_path, pulled):
    ref, img = pulled
    out = tmp_path / "stdout.tar"
    with open(out, "wb") as f:
        p = subprocess.run([str(BERTHCTL), "--no-ask-password", "images", "export", ref, "-"], stdout=f,
                           stderr=subprocess.PIPE, text=False, timeout=300)
    assert p.returncode == 0, p.stderr
    with tarfile.open(out) as t:
        assert f"blobs/sha256/{img.manifest.hex}" in t.getnames()
    # Through a real pipe too.
    p = subprocess.run(f"{BERTHCTL} --no-ask-password images export {ref} - | cat > {tmp_path}/piped.tar",
                       shell=True, capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "piped.tar").read_bytes() == out.read_bytes()


def test_export_allowed_for_member_refused_for_outsider(tmp_path, pulled, member, outsider):
    ref, img = pulled
    p = subprocess.run(["runuser", "-u", member, "--", str(BERTHCTL), "--no-ask-password", "images", "export", ref,
                        "-"], capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert f"blobs/sha256/{img.manifest.hex}" in tarfile.open(fileobj=io.BytesIO(p.stdout)).getnames()
    p = subprocess.run(["runuser", "-u", outsider, "--", str(BERTHCTL), "--no-ask-password", "images", "export",
                        ref, "-"], capture_output=True, timeout=300)
    assert p.returncode != 0
    assert b"permission denied" in p.stderr and b"org.berth.info" in p.stderr, p.stderr


# ---- issue 12, finding 11: archives written by other tools, and exports read back by them -----------

@pytest.fixture
def small_layout(tmp_path):
    b = ImageBuilder(tmp_path / "layout")
    layer = b.add_layer([Dir("etc"), File("etc/f11", os.urandom(4096))])
    img = b.add_image([layer], cmd=["/bin/sh"], tag="latest")
    return tmp_path / "layout", img


def run_tool(*argv, timeout=300):
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{argv}: {p.stdout}{p.stderr}"
    return p


def imported(p):
    assert p.returncode == 0, p.stderr
    return dict(l.split(": ", 1) for l in p.stdout.strip().splitlines())


def test_hardening_f11_import_skopeo_docker_archive(tmp_path, small_layout):
    """skopeo's docker-archive: layers as <digest>.tar at the top, <id>/layer.tar symlinks to them."""
    require_tools("skopeo")
    layout, img = small_layout
    out = tmp_path / "docker-archive.tar"
    run_tool("skopeo", "copy", f"oci:{layout}:latest", f"docker-archive:{out}:localhost/f11/sk:v1")
    with tarfile.open(out) as t:
        manifest = json.loads(t.extractfile("manifest.json").read())
        assert all("/" not in l for l in manifest[0]["Layers"]), manifest  # the layout this is about
        layer_bytes = [t.extractfile(l).read() for l in manifest[0]["Layers"]]
    ref = "localhost/f11/sk:v1"
    try:
        names = imported(import_archive(out))
        assert set(names) == {ref}, names
        plat = inspect(ref)["platforms"][0]
        assert plat["config"]["digest"] == img.config.digest
        assert [l["digest"] for l in plat["layers"]] == [sha(b) for b in layer_bytes]
    finally:
        rm(ref)


def test_hardening_f11_name_wins_over_the_archives_own(tmp_path, small_layout):
    """--name wins over a full name written in the archive (the caller's word, not the archive's)."""
    require_tools("skopeo")
    layout, img = small_layout
    out = tmp_path / "named.tar"
    run_tool("skopeo", "copy", f"oci:{layout}:latest", f"docker-archive:{out}:docker.io/library/f11planted:latest")
    try:
        names = imported(import_archive(out, "--name", "localhost/f11/chosen:v2"))
        assert set(names) == {"localhost/f11/chosen:v2"}, names
        assert "docker.io/library/f11planted:latest" not in images()
    finally:
        rm("localhost/f11/chosen:v2", "docker.io/library/f11planted:latest")


def test_hardening_f11_import_skopeo_oci_archive(tmp_path, small_layout):
    require_tools("skopeo")
    layout, img = small_layout
    out = tmp_path / "oci-archive.tar"
    run_tool("skopeo", "copy", f"oci:{layout}:latest", f"oci-archive:{out}:localhost/f11/skoci:v1")
    ref = "localhost/f11/skoci:v1"
    try:
        names = imported(import_archive(out))
        assert set(names) == {ref}, names
        assert inspect(ref)["platforms"][0]["config"]["digest"] == img.config.digest
    finally:
        rm(ref)


def test_hardening_f11_import_umoci_layout(tmp_path):
    require_tools("umoci")
    lay = tmp_path / "umoci"
    (tmp_path / "hello").write_bytes(b"umoci\n")
    run_tool("umoci", "init", "--layout", str(lay))
    run_tool("umoci", "new", "--image", f"{lay}:v1")
    run_tool("umoci", "config", "--image", f"{lay}:v1", "--config.cmd", "/hello")
    run_tool("umoci", "insert", "--image", f"{lay}:v1", str(tmp_path / "hello"), "/hello")
    digest = json.loads((lay / "index.json").read_text())["manifests"][0]["digest"]
    archive = tar_dir(lay, tmp_path / "umoci.tar")
    ref = "localhost/f11/umoci:v1"
    try:
        # umoci names by tag only. --no-unpack: Debian's umoci 0.4.7 writes `insert` layers whose tar stream
        # ends without padding or end blocks (python's tarfile refuses them too); the import is the subject.
        names = imported(import_archive(archive, "--no-unpack", "--name", "localhost/f11/umoci"))
        assert names == {ref: digest}, names
    finally:
        rm(ref)


def test_hardening_f11_export_read_by_umoci(tmp_path, pulled):
    require_tools("umoci")
    ref, img = pulled
    out = tmp_path / "export.tar"
    assert berthctl("images", "export", ref, str(out)).returncode == 0
    lay = tmp_path / "lay"
    with tarfile.open(out) as t:
        t.extractall(lay)
    assert ref in run_tool("umoci", "ls", "--layout", str(lay)).stdout.split()
    run_tool("umoci", "unpack", "--rootless", "--image", f"{lay}:{ref}", str(tmp_path / "bundle"))
    assert (tmp_path / "bundle" / "rootfs" / "bin" / "busybox").exists()


def test_hardening_f11_ctr_export_imported_and_berth_export_read_by_ctr(tmp_path, pulled, containerd):
    ref, img = pulled
    out = tmp_path / "berth.tar"
    assert berthctl("images", "export", ref, str(out)).returncode == 0
    p = containerd.ctr("images", "import", "--no-unpack", str(out), timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    ctr_out = tmp_path / "ctr.tar"
    p = containerd.ctr("images", "export", str(ctr_out), ref, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert berthctl("images", "rm", ref).returncode == 0
    names = imported(import_archive(ctr_out))
    assert names == {ref: img.manifest.digest}, names
