"""berthctl images unpack (UnpackImage) and the unpack that images import does, through the real stack.

An image is pulled with --no-unpack (or imported), then unpacked from the content store; the result is
checked through `images mount` (a file's content and mode). A layer blob missing from the store fails
with one clear line; an outsider is refused."""
import os
from pathlib import Path

from berthtest import stack
from berthtest.cli import ImageView, inspect, tar_dir
from berthtest.fixtures import *  # noqa: F401,F403  (registry, image_builder, busybox_layout)
from berthtest.images import ImageBuilder, File, Dir, busybox_rootfs_layer
from berthtest.stack import berthctl

BLOBS = Path("/var/lib/berth/content/blobs/sha256")


def build(tmp_path, tag, payload, mode=0o750):
    b = ImageBuilder(tmp_path / "layout")
    base = b.add_layer(busybox_rootfs_layer())
    top = b.add_layer([Dir("opt"), File("opt/payload", payload, mode=mode)])
    img = b.add_image([base, top], cmd=["/bin/sh"], tag=tag)
    return b, img


def cleanup(*refs):
    for r in refs:
        berthctl("images", "rm", r)
    berthctl("content", "gc")


def test_pull_no_unpack_then_unpack_then_mount(registry, tmp_path):
    payload = os.urandom(4096)
    b, img = build(tmp_path, "v1", payload)
    registry.push(b.layout_dir, "v1", "unpk/explicit:v1")
    ref = f"{registry.host}/unpk/explicit:v1"
    try:
        p = berthctl("images", "pull", "--no-unpack", ref)
        assert p.returncode == 0, p.stderr
        assert inspect(ref)["platforms"][0]["unpacked"] is False

        p = berthctl("images", "unpack", ref)
        assert p.returncode == 0, p.stderr
        out = p.stdout
        assert out.strip().splitlines()[-1] == f"{ref}: {img.manifest.digest}", out
        assert f"{img.layers[1].digest} unpacked" in out, out
        assert inspect(ref)["platforms"][0]["unpacked"] is True

        with ImageView(ref, tmp_path / "mnt") as root:
            f = root / "opt" / "payload"
            assert f.read_bytes() == payload
            assert (f.stat().st_mode & 0o7777) == 0o750

        # Again: every chain id is committed, nothing is unpacked twice.
        p = berthctl("images", "unpack", ref)
        assert p.returncode == 0, p.stderr
        assert " unpacking" not in p.stdout, p.stdout
    finally:
        cleanup(ref)


def test_unpack_missing_layer_blob(registry, tmp_path):
    b, img = build(tmp_path, "v1", os.urandom(1024))
    registry.push(b.layout_dir, "v1", "unpk/missing:v1")
    ref = f"{registry.host}/unpk/missing:v1"
    try:
        p = berthctl("images", "pull", "--no-unpack", ref)
        assert p.returncode == 0, p.stderr
        gone = img.layers[1].digest
        (BLOBS / gone.split(":", 1)[1]).unlink()
        p = berthctl("images", "unpack", ref)
        assert p.returncode != 0, p.stdout
        err = p.stderr.strip().splitlines()
        assert len(err) == 1, p.stderr
        assert f"layer {gone} of {ref} is not in the content store; pull the image again" in err[0], p.stderr
        assert inspect(ref)["platforms"][0]["unpacked"] is False
    finally:
        cleanup(ref)


def test_unpack_unknown_image_and_platform():
    p = berthctl("images", "unpack", "localhost/unpk/never:v1")
    assert p.returncode != 0 and "No image" in p.stderr, p.stderr


def test_import_unpacks_and_no_unpack(tmp_path):
    payload = os.urandom(2048)
    b, img = build(tmp_path, "localhost/unpk/imported:1", payload, mode=0o640)
    archive = tar_dir(b.layout_dir, tmp_path / "oci.tar")
    ref = "localhost/unpk/imported:1"
    ref2 = "localhost/unpk/imported-packed:1"
    try:
        p = berthctl("images", "import", archive)
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == f"{ref}: {img.manifest.digest}", p.stdout
        assert inspect(ref)["platforms"][0]["unpacked"] is True
        with ImageView(ref, tmp_path / "mnt") as root:
            f = root / "opt" / "payload"
            assert f.read_bytes() == payload
            assert (f.stat().st_mode & 0o7777) == 0o640

        # --no-unpack: recorded only. A different payload so no snapshot of it exists yet.
        b2, img2 = build(tmp_path / "two", ref2, os.urandom(2048))
        archive2 = tar_dir(b2.layout_dir, tmp_path / "oci2.tar")
        p = berthctl("images", "import", "--no-unpack", archive2)
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == f"{ref2}: {img2.manifest.digest}", p.stdout
        assert inspect(ref2)["platforms"][0]["unpacked"] is False
        mp = tmp_path / "mnt2"
        mp.mkdir()
        p = berthctl("images", "mount", ref2, str(mp))
        assert p.returncode != 0 and "not unpacked" in p.stderr, p.stderr
        # ... and images unpack completes it.
        p = berthctl("images", "unpack", ref2)
        assert p.returncode == 0, p.stderr
        assert inspect(ref2)["platforms"][0]["unpacked"] is True
    finally:
        cleanup(ref, ref2)


def test_outsider_refused(registry, tmp_path, outsider):
    b, img = build(tmp_path, "v1", os.urandom(512))
    registry.push(b.layout_dir, "v1", "unpk/outsider:v1")
    ref = f"{registry.host}/unpk/outsider:v1"
    try:
        p = berthctl("images", "pull", "--no-unpack", ref)
        assert p.returncode == 0, p.stderr
        p = berthctl("images", "unpack", ref, user=outsider)
        assert p.returncode != 0
        err = p.stderr.strip().splitlines()
        assert len(err) == 1 and "permission denied" in err[0] and "org.berth.image-pull" in err[0], p.stderr
        assert inspect(ref)["platforms"][0]["unpacked"] is False
    finally:
        cleanup(ref)


def test_unknown_flags_refused():
    p = stack.busctl("call", "org.berth.Broker1", "/org/berth/Broker1", "org.berth.Broker1.Manager",
                     "UnpackImage", "sst", "localhost/x:1", "", "2")
    assert p.returncode != 0 and "flags" in p.stderr.lower(), p.stderr
