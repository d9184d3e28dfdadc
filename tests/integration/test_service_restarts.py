"""Issue 11: a restart of the fetcher or unpacker must not cost users their work. The broker starts a
service that died under a pull again (the next call activates it) and resumes: downloads from their
partial ingest with Range, unpacks anew. The progress says "retrying"; a service that keeps dying
fails the pull cleanly after PULL_SERVICE_RESTARTS_MAX restarts. (The unpacker's case is
test_unpack_vs_containerd.py::test_killed_unpacker_mid_unpack_the_pull_completes.)

Downloads go through a throttling proxy, so that a kill reliably lands mid-download.
"""
import os
import re
import signal
import subprocess

from berthtest import stack
from berthtest.fixtures import *  # noqa: F401,F403
from berthtest.stack import name_pid, wait_for

from berthtest.proxy import CountingProxy
from berthtest.store import have_blob, ingest_data_size
from test_pull import MiB, big_image, one_error_line, pulled, rm_images

FETCHER = "org.berth.Fetcher1"
RESTARTS_MAX = 3  # PULL_SERVICE_RESTARTS_MAX in lib/berth-limits.h


def start_pull(ref):
    return subprocess.Popen([str(stack.BERTHCTL), "--no-ask-password", "images", "pull", ref],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_fetcher_mid_download_the_pull_resumes_and_completes(registry, berth_config, tmp_path):
    size = 48 * MiB
    b, img, big = big_image(tmp_path, size)
    registry.push(b.layout_dir, "latest", "test/restart-fetcher:v1", timeout=600)
    px = CountingProxy(registry.port, rate=6 * MiB)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/restart-fetcher:v1"
    proc = start_pull(ref)
    try:
        wait_for(lambda: ingest_data_size(big.digest) >= 8 * MiB, timeout=120, what="8 MiB of the layer downloaded")
        fetcher = name_pid(FETCHER)
        assert fetcher
        os.kill(fetcher, signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        px.close()
    try:
        assert pulled(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), ref) == img.manifest.digest
        # Said in the progress the user sees.
        assert re.search(rf"^{re.escape(big.digest)} retrying\b", out, re.M), out
        assert not stack.pid_alive(fetcher)
        assert have_blob(big.digest)
        # Resumed, not started over: the second GET of the layer asked for the rest only.
        gets = px.blob_gets(big.digest)
        assert not gets[0]["range"] and all(g["range"] for g in gets[1:]), gets
        m = re.fullmatch(r"bytes=(\d+)-", gets[-1]["range"] or "")
        assert len(gets) >= 2 and m and int(m.group(1)) >= 8 * MiB, gets
        assert px.bytes_down < size + size // 4, px.bytes_down
    finally:
        rm_images(ref)


def test_fetcher_that_keeps_dying_fails_the_pull_cleanly(registry, berth_config, tmp_path):
    size = 48 * MiB
    b, img, big = big_image(tmp_path, size)
    registry.push(b.layout_dir, "latest", "test/restart-limit:v1", timeout=600)
    px = CountingProxy(registry.port, rate=2 * MiB)
    berth_config.registry(px.host, plain_http=True)
    ref = f"{px.host}/test/restart-limit:v1"
    proc = start_pull(ref)
    killed = []
    try:
        wait_for(lambda: ingest_data_size(big.digest) >= 1 * MiB, timeout=120, what="the download under way")
        # Every fetcher the broker starts for this pull dies as soon as it owns its name.
        while proc.poll() is None and len(killed) <= RESTARTS_MAX + 2:
            def new_fetcher():
                if proc.poll() is not None:
                    return -1
                pid = name_pid(FETCHER)
                return pid if pid and pid not in killed else None
            pid = wait_for(new_fetcher, timeout=60, what="the next fetcher instance")
            if pid == -1:
                break
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        px.close()
    line = one_error_line(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    assert len(killed) == RESTARTS_MAX + 1, (killed, line)
    assert f"fetcher stopped {RESTARTS_MAX + 1} times" in line and "giving up" in line, line
    assert not have_blob(big.digest)
    # What was downloaded is kept for the next pull to resume.
    assert ingest_data_size(big.digest) >= 1 * MiB
    rm_images(ref)
    # PruneContent flag 1: partial downloads too.
    stack.busctl("call", "org.berth.Broker1", "/org/berth/Broker1", "org.berth.Broker1.Manager", "PruneContent",
                 "t", "1")
