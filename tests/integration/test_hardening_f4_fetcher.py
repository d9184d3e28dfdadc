"""Issue 12, finding 4, at the fetcher itself: berth-fetcher (the one built in $BERTH_BUILD_DIR) on a
private bus, called as the broker's user with FetchBlobFor(uid), against FakeRegistry instances whose
fault hooks hold, fail or corrupt downloads. Self-contained: no stack (run as root, also with
    pytest --noconftest tests/integration/test_hardening_f4_fetcher.py).
The end-to-end versions through berthctl are in test_hardening_f4_fetch_fairness.py.
"""
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from berthtest.fakeregistry import FakeRegistry
from berthtest.images import Dir, File, ImageBuilder
from berthtest.privatefetcher import PrivateFetcher

HANG_GUARD = 120


@pytest.fixture
def fetcher():
    assert os.geteuid() == 0
    tmp = Path(tempfile.mkdtemp(prefix="berth-f4-"))
    tmp.chmod(0o755)
    f = PrivateFetcher(tmp)
    yield f
    f.close()
    shutil.rmtree(tmp, ignore_errors=True)


def image(tmp, n=1, size=300000):
    b = ImageBuilder(tmp / f"layout{n}{size}")
    layers = [b.add_layer([Dir("d"), File(f"d/{i}", os.urandom(size))]) for i in range(n)]
    b.add_image(layers, cmd=["/bin/sh"], tag="latest")
    return b, layers


def finished(p):
    out, err = p.communicate(timeout=HANG_GUARD)
    return p.returncode, out, err


def test_hardening_f4_fetcher_fair_slots(fetcher, tmp_path):
    b, layers = image(tmp_path, n=3)
    fr = FakeRegistry(b.layout_dir)
    fetcher.config(f'[fetcher]\nmax-concurrent-downloads=2\n[registry "{fr.host}"]\nplain-http=true\n')
    held, release = [], threading.Event()
    slow = {l.digest for l in layers[:2]}

    def hold(h, method, path):
        if method == "GET" and path.rsplit("/", 1)[-1] in slow and not release.is_set():
            held.append(path)
            release.wait(HANG_GUARD)
        return False
    fr.fault = hold
    name = f"{fr.host}/test/f4"
    try:
        root = [fetcher.fetch(name, l, 0, bg=True) for l in layers[:2]]
        end = time.monotonic() + HANG_GUARD
        while len(held) < 2:
            assert time.monotonic() < end, "the two downloads never reached the registry"
            time.sleep(0.01)
        # Both slots are uid 0's; uid 1000's download must not wait for them.
        r = fetcher.fetch(name, layers[2], 1000)
        assert r.returncode == 0, r.stderr + fetcher.log.read_text()[-2000:]
        assert "Pausing the download" in fetcher.log.read_text()
    finally:
        release.set()
    for p in root:
        rc, out, err = finished(p)
        assert rc == 0, err
    fr.close()


def test_hardening_f4_fetcher_waiter_failure_not_shared(fetcher, tmp_path):
    b, layers = image(tmp_path)
    layer = layers[0]
    bad, good = FakeRegistry(b.layout_dir), FakeRegistry(b.layout_dir)
    fetcher.config(f'[fetcher]\nretries=0\n[registry "{bad.host}"]\nplain-http=true\n'
                   f'[registry "{good.host}"]\nplain-http=true\n')
    asked, release = threading.Event(), threading.Event()

    bad.fail_blob_after(layer.digest, asked, release, HANG_GUARD)
    try:
        first = fetcher.fetch(f"{bad.host}/test/f4bad", layer, 0, bg=True)
        assert asked.wait(HANG_GUARD)
        second = fetcher.fetch(f"{good.host}/test/f4good", layer, 1000, bg=True)
        end = time.monotonic() + HANG_GUARD
        while "for uid 1000 joins the download" not in fetcher.log.read_text():
            assert time.monotonic() < end
            time.sleep(0.01)
    finally:
        release.set()
    rc1, _, err1 = finished(first)
    rc2, out2, err2 = finished(second)
    assert rc1 != 0 and "unknown" in err1.lower(), err1
    assert rc2 == 0, err2 + fetcher.log.read_text()[-2000:]
    assert len(good.blob_gets(layer.digest)) == 1
    bad.close()
    good.close()


def test_hardening_f4_fetcher_bad_resume_restarts_from_zero(fetcher, tmp_path):
    b, layers = image(tmp_path)
    layer = layers[0]
    hostile, honest = FakeRegistry(b.layout_dir), FakeRegistry(b.layout_dir)
    fetcher.config(f'[fetcher]\nretries=0\n[registry "{hostile.host}"]\nplain-http=true\n'
                   f'[registry "{honest.host}"]\nplain-http=true\n')

    def garbage(h, method, path):
        if method == "GET" and path.endswith("/blobs/" + layer.digest):
            FakeRegistry.reply_cut(h, os.urandom(layer.size), 50000, {"Content-Type": "application/octet-stream"})
            return True
        return False
    hostile.fault = garbage
    r = fetcher.fetch(f"{hostile.host}/test/f4hostile", layer, 0)
    assert r.returncode != 0
    r = fetcher.fetch(f"{honest.host}/test/f4honest", layer, 1000)
    assert r.returncode == 0, r.stderr + fetcher.log.read_text()[-2000:]
    assert [g["range"] for g in honest.blob_gets(layer.digest)] == ["bytes=50000-", None]
    hostile.close()
    honest.close()
