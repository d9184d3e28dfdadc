"""The fetcher re-hashes a committed blob once per instance before it serves it (issue 12, finding 2).
That hashing (up to BLOB_SIZE_MAX, 64 GiB) runs in a thread of its own: while it runs, the fetcher's
event loop keeps answering other calls. A blob that does not hash to its name is removed and fetched
again. Self-contained: berth-fetcher (from $BERTH_BUILD_DIR) on a private bus, no stack (run as root,
also with  pytest --noconftest tests/integration/test_fetcher_rehash_off_loop.py).
"""
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from berthtest.fakeregistry import FakeRegistry
from berthtest.images import File, ImageBuilder
from berthtest.privatefetcher import PrivateFetcher

HANG_GUARD = 120
# Big enough that re-hashing it takes far longer than one bus round trip (about a second per GiB here;
# a sparse file, so it costs no disk).
DAMAGED_SIZE = 2 << 30


@pytest.fixture
def fetcher():
    assert os.geteuid() == 0
    tmp = Path(tempfile.mkdtemp(prefix="berth-rehash-"))
    tmp.chmod(0o755)
    f = PrivateFetcher(tmp)
    yield f
    f.close()
    shutil.rmtree(tmp, ignore_errors=True)


def test_rehash_of_a_present_blob_leaves_the_loop_free(fetcher, tmp_path):
    b = ImageBuilder(tmp_path / "layout")
    layer = b.add_layer([File("f", os.urandom(4096))])
    b.add_image([layer], tag="latest")
    reg = FakeRegistry(b.layout_dir)
    fetcher.config(f'[registry "{reg.host}"]\nplain-http=true\n')
    # A damaged blob under the layer's name, as a store damaged behind the fetcher's back would hold.
    blob = fetcher.state / "content" / "blobs" / "sha256" / layer.hex
    with open(blob, "wb") as f:
        f.truncate(DAMAGED_SIZE)
    shutil.chown(blob, "berth-fetcher", "berth-fetcher")
    blob.chmod(0o444)
    try:
        p = fetcher.fetch(f"{reg.host}/test/rehash", layer, 0, bg=True)
        end = time.monotonic() + HANG_GUARD
        while f"Re-hashing {layer.digest}" not in fetcher.log.read_text():
            assert p.poll() is None and time.monotonic() < end, (p.communicate(), fetcher.log.read_text())
            time.sleep(0.01)
        info = fetcher.call("GetInfo")
        assert info.returncode == 0, info.stderr
        assert p.poll() is None, "GetInfo was answered only after the re-hash"

        out, err = p.communicate(timeout=HANG_GUARD)
        assert p.returncode == 0, err
        assert "does not hash to its name" in fetcher.log.read_text()
        # Removed, fetched again from the registry: the stored blob is the layer now.
        assert blob.stat().st_size == layer.size
        assert len(reg.blob_gets(layer.digest)) == 1
    finally:
        reg.close()
