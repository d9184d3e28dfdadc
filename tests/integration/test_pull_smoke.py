"""Smoke test of the pull path end to end: PullImage → transfer → image record → content gc.

A busybox image built by the tests, served by a plain-HTTP docker-registry on 127.0.0.1, pulled by
root and by a member of group berth through berthctl; an outsider is refused."""
import re

import pytest

from berthtest.cli import content, images, inspect
from berthtest.fixtures import *  # noqa: F401,F403  (registry, image_builder, busybox_layout)
from berthtest.images import native_platform
from berthtest.stack import berthctl


def expected_platform():
    p = native_platform()
    return p if isinstance(p, str) else "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)


@pytest.fixture
def served_busybox(registry, busybox_layout):
    layout, img = busybox_layout
    registry.push(layout, "latest", "library/busybox:latest")
    ref = f"{registry.host}/library/busybox:latest"
    yield ref, img
    berthctl("images", "rm", ref)


def blobs_of(img):
    return {img.manifest.digest, img.config.digest, *(l.digest for l in img.layers)}


def test_pull_as_root_then_ls_rm_gc(served_busybox):
    ref, img = served_busybox
    p = berthctl("images", "pull", ref)
    assert p.returncode == 0, p.stderr
    # Not a tty: plain lines, and the last one is REF: DIGEST.
    assert p.stdout.strip().splitlines()[-1] == f"{ref}: {img.manifest.digest}", p.stdout

    listed = images()
    assert ref in listed, listed
    assert listed[ref]["digest"] == img.manifest.digest
    assert listed[ref]["platforms"] == [expected_platform()]
    assert listed[ref]["size"] == sum(d.size for d in (img.manifest, img.config, *img.layers))

    p = berthctl("images", "ls", "-q")
    assert ref in p.stdout.split()

    doc = inspect(ref)
    assert doc["name"] == ref
    plat = doc["platforms"][0]
    assert [l["digest"] for l in plat["layers"]] == [l.digest for l in img.layers]
    assert plat["image_config"]["cmd"] == ["/bin/sh"]
    assert len(plat["chain_ids"]) == len(img.layers)

    blobs = content()
    for d in blobs_of(img):
        assert d in blobs and ref in blobs[d]["references"], (d, blobs.get(d))

    p = berthctl("images", "rm", ref)
    assert p.returncode == 0, p.stderr
    assert ref not in images()
    assert berthctl("images", "inspect", ref).returncode != 0

    p = berthctl("content", "gc")
    assert p.returncode == 0, p.stderr
    assert re.search(r"Removed [1-9]\d* blob", p.stdout), p.stdout
    remaining = content()
    for d in blobs_of(img):
        assert d not in remaining


def test_pull_as_member_and_refusals(served_busybox, member, outsider):
    ref, img = served_busybox
    p = berthctl("images", "pull", "--quiet", ref, user=member)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"{ref}: {img.manifest.digest}"
    assert images(user=member)[ref]["digest"] == img.manifest.digest

    # Removing and garbage collection stay admin-only.
    p = berthctl("images", "rm", ref, user=member)
    assert p.returncode != 0
    assert "org.berth.image-remove" in p.stderr
    assert images()[ref]["digest"] == img.manifest.digest  # still there

    for args in (["images", "pull", ref], ["images", "ls"], ["content", "gc"]):
        p = berthctl(*args, user=outsider)
        assert p.returncode != 0, args
        err = p.stderr.strip().splitlines()
        assert len(err) == 1 and "permission denied" in err[0], p.stderr


def test_pull_errors_are_one_line(registry):
    p = berthctl("images", "pull", "UPPER/case")
    assert p.returncode != 0
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("berthctl: images pull: "), p.stderr

    p = berthctl("images", "pull", f"{registry.host}/library/nothing:here")
    assert p.returncode != 0
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("berthctl: images pull: "), p.stderr
