"""Issue 12, hardening round 2 (findings 1, 2, 3, 7, 8, 9, 12; the polkit matrix of finding 0 is
test_polkit_matrix.py). Each test reproduces the attack as the principal the finding names -- a member
of group berth, a stranger, a non-root admin granted one action, a hostile registry -- and asserts that
it now fails, with the specific refusal."""
import json
import os
import re
import stat
import uuid
from pathlib import Path

import pytest

from berthtest import stack
from berthtest.fixtures import *  # noqa: F401,F403
from berthtest.images import ImageBuilder, Dir, File
from berthtest.stack import berthctl, busctl

BROKER = "org.berth.Broker1"
BROKER_PATH = "/org/berth/Broker1"
MANAGER = "org.berth.Broker1.Manager"
TRANSFER = "org.berth.Broker1.Transfer"
STATE = Path("/var/lib/berth")


def ok(p):
    assert p.returncode == 0, f"rc={p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def refused(p, text):
    assert p.returncode != 0, f"expected a refusal, got success:\n{p.stdout}\n{p.stderr}"
    assert text in p.stderr, p.stderr
    return p


def images():
    data = json.loads(ok(busctl("--json=short", "call", BROKER, BROKER_PATH, MANAGER, "ListImages")).stdout)
    return {r[0]: r[1] for r in data["data"][0]}


def small_image(b, tag):
    name = uuid.uuid4().hex
    layer = b.add_layer([Dir("data"), File(f"data/{name}", os.urandom(4096))])
    return b.add_image([layer], tag=tag)


def rm_images(*refs):
    for ref in refs:
        berthctl("images", "rm", ref)


# ---- finding 1: TagImage plants names ----------------------------------------------------------

def test_hardening_f1_tag_digest_plant(registry, member, tmp_path):
    """A member pulls their own image and tries to make it another image's name: pinned to the real
    image's digest, an absent tag in a registry's namespace, docker.io/library/debian:latest."""
    b = ImageBuilder(tmp_path / "layout")
    real = small_image(b, "real")
    evil = small_image(b, "evil")
    registry.push(b.layout_dir, "real", "test/f1-real:v1")
    registry.push(b.layout_dir, "evil", "test/f1-evil:v1")
    real_ref, evil_ref = f"{registry.host}/test/f1-real:v1", f"{registry.host}/test/f1-evil:v1"
    ok(berthctl("images", "pull", "--no-unpack", evil_ref, user=member))
    planted = [f"{registry.host}/test/f1-real@{real.manifest.digest}",
               f"{registry.host}/test/f1-real:v1",
               "docker.io/library/debian:latest"]
    try:
        # The real image's digest on the member's content: refused for everyone, root included.
        p = berthctl("images", "tag", evil_ref, planted[0], user=member)
        refused(p, f"names digest {real.manifest.digest}")
        refused(berthctl("images", "tag", evil_ref, planted[0]), f"names digest {real.manifest.digest}")
        # A name in a registry's namespace is what a pull or an import creates: import's action.
        for target in planted[1:]:
            refused(berthctl("images", "tag", evil_ref, target, user=member), "org.berth.image-import")
        have = images()
        assert not set(planted) & set(have), have
        # What stays allowed: the host's own namespace, and the image's own digest under any name.
        ok(berthctl("images", "tag", evil_ref, "localhost/f1-mine:v1", user=member))
        own = f"{registry.host}/test/f1-real@{evil.manifest.digest}"
        ok(berthctl("images", "tag", evil_ref, own, user=member))
        have = images()
        assert have["localhost/f1-mine:v1"] == have[own] == evil.manifest.digest
        # Root (who holds every action) may still name anything; then pulling the real name is real.
        ok(berthctl("images", "pull", "--no-unpack", real_ref))
        assert images()[real_ref] == real.manifest.digest
    finally:
        rm_images(evil_ref, real_ref, "localhost/f1-mine:v1", f"{registry.host}/test/f1-real@{evil.manifest.digest}",
                  *planted)
