"""Issue 12, finding 4: fairness between users in the fetcher's download scheduling, attacked by a member
of group `berth` (or any puller) with a slow or hostile registry.

- slots: one user's held downloads cannot keep another user's pull waiting (fair share of the host-wide
  slots: a user above their share is paused, keeping its partial data, for one below it);
- a shared download of one digest that fails at one caller's registry does not fail another caller
  who asked for it from another registry;
- a partial download whose resume fails verification is discarded and fetched again from zero, once.

Slow registries are CountingProxy's hold gate (berthtest.proxy) and FakeRegistry fault hooks: tests wait
on events, never on timings.
"""
import json
import os
import subprocess
import threading
import time

from berthtest import stack
from berthtest.events import BROKER
from berthtest.fakeregistry import FakeRegistry
from berthtest.fixtures import *  # noqa: F401,F403
from berthtest.store import have_blob, ingest_data_size
from test_pull import build, pull, pulled, rm_images

HANG_GUARD = 120


def popen_pull(ref, user=None):
    cmd = [str(stack.BERTHCTL), "--no-ask-password", "images", "pull", "--no-unpack", ref]
    if user:
        cmd = ["runuser", "-u", user, "--"] + cmd
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def done(p, timeout=HANG_GUARD):
    out, err = p.communicate(timeout=timeout)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def test_hardening_f4_fair_slots(registry, proxies, fake_registry, berth_config, member, tmp_path):
    """Root's three downloads from a registry that stalls hold both slots; a member's pull from another
    registry still completes (one of root's is paused), and root's completes once its registry moves."""
    berth_config.fetcher_settings(max_concurrent_downloads=2)
    b, img = build(tmp_path, nlayers=3, sub="slow")
    registry.push(b.layout_dir, "latest", "test/f4slow:v1")
    px = proxies(registry.port)
    px.hold_blobs(after=0, digests=[l.digest for l in img.layers])
    berth_config.registry(px.host, plain_http=True)
    ref_slow = f"{px.host}/test/f4slow:v1"

    b2, img2 = build(tmp_path, sub="quick")
    fr = fake_registry(b2.layout_dir)
    berth_config.registry(fr.host, plain_http=True)
    ref_quick = f"{fr.host}/test/f4quick@{img2.manifest.digest}"

    slow = popen_pull(ref_slow)
    try:
        px.wait_held(2)  # both slots are root's, each held at the gate
        quick = done(popen_pull(ref_quick, user=member))
        assert pulled(quick) == img2.manifest.digest
        assert all(have_blob(l.digest) for l in img2.layers)
        assert not all(have_blob(l.digest) for l in img.layers)
    finally:
        px.release()
    assert pulled(done(slow)) == img.manifest.digest
    rm_images(ref_slow, f"{fr.host}/test/f4quick")


def test_hardening_f4_waiter_failure_not_shared(fake_registry, berth_config, member, tmp_path):
    """Root and a member pull the same image from two registries; the layer's download is shared and
    runs from root's registry, which then fails it. The member's pull retries from its own registry."""
    b, img = build(tmp_path)
    layer = img.layers[0]
    bad = fake_registry(b.layout_dir)
    good = fake_registry(b.layout_dir)
    berth_config.registry(bad.host, plain_http=True)
    berth_config.registry(good.host, plain_http=True)
    asked, release = threading.Event(), threading.Event()

    bad.fail_blob_after(layer.digest, asked, release, HANG_GUARD)

    # Transfers' signals go only to their participants (finding 7), so root reads every transfer's
    # Layers property (root sees all) until both pulls wait for the layer.
    def transfers_waiting_for(digest):
        p = stack.busctl("--json=short", "call", BROKER, "/org/berth/Broker1", "org.berth.Broker1.Manager",
                         "ListTransfers")
        if p.returncode != 0:
            return 0
        n = 0
        for path, _ref, _state in json.loads(p.stdout)["data"][0]:
            q = stack.busctl("--json=short", "get-property", BROKER, path, "org.berth.Broker1.Transfer",
                             "Layers")
            if q.returncode == 0 and any(digest in str(e) for e in json.loads(q.stdout)["data"]):
                n += 1
        return n

    root = popen_pull(f"{bad.host}/test/f4bad@{img.manifest.digest}")
    try:
        assert asked.wait(HANG_GUARD)
        mine = popen_pull(f"{good.host}/test/f4good@{img.manifest.digest}", user=member)
        deadline = time.monotonic() + HANG_GUARD
        while transfers_waiting_for(layer.digest) < 2:
            assert time.monotonic() < deadline, "both transfers waiting for the layer: not within the guard"
            assert mine.poll() is None, done(mine).stderr
            time.sleep(0.05)
    finally:
        release.set()
    r_root = done(root)
    r_mine = done(mine)
    assert r_root.returncode != 0, "root's pull from the failing registry succeeded"
    assert pulled(r_mine) == img.manifest.digest, r_mine.stderr
    assert len(good.blob_gets(layer.digest)) == 1
    rm_images(f"{good.host}/test/f4good")


def test_hardening_f4_bad_resume_restarts_from_zero(fake_registry, berth_config, member, tmp_path):
    """A hostile registry leaves a partial download with a wrong prefix; the next pull of that digest,
    from an honest registry, resumes, fails verification, and then fetches it from byte 0."""
    b, img = build(tmp_path, size=300000)
    layer = img.layers[0]
    hostile = fake_registry(b.layout_dir)
    honest = fake_registry(b.layout_dir)
    berth_config.registry(hostile.host, plain_http=True)
    berth_config.registry(honest.host, plain_http=True)
    berth_config.fetcher_settings(retries=0)

    def garbage_then_hang_up(h, method, path):
        if method == "GET" and path.endswith("/blobs/" + layer.digest):
            data = os.urandom(len(hostile.blob_bytes(layer.digest)))
            FakeRegistry.reply_cut(h, data, 50000, {"Content-Type": "application/octet-stream"})
            return True
        return False
    hostile.fault = garbage_then_hang_up
    p = pull(f"{hostile.host}/test/f4hostile@{img.manifest.digest}")
    assert p.returncode != 0
    assert ingest_data_size(layer.digest) == 50000, "the partial download was not kept"

    assert pulled(pull(f"{honest.host}/test/f4honest@{img.manifest.digest}", user=member)) == img.manifest.digest
    gets = honest.blob_gets(layer.digest)
    assert [g["range"] for g in gets] == ["bytes=50000-", None], gets
    assert have_blob(layer.digest)
    rm_images(f"{honest.host}/test/f4honest")
