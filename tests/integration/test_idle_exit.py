"""Issue 11: idle exit. Each service with nothing in flight exits after idle-exit-sec (set short here
through /etc/berth), releasing its bus name first; the next call starts it again by activation; and a
service with work in flight (a slow pull through a throttling proxy) does not go.

No timing thresholds: the tests wait (bounded) for NameOwnerChanged, and judge only what the bus
reported: which owners appeared and went, and when relative to the pull.
"""
import json
import os

import pytest

from berthtest import stack
from berthtest.fixtures import *  # noqa: F401,F403
from berthtest.services import IdleConfig, NameWatch, stop_all
from berthtest.stack import SERVICES

from berthtest.proxy import CountingProxy
from test_pull import big_image, pulled, rm_images, MiB

BROKER = SERVICES["broker"]
FETCHER = SERVICES["fetcher"]


@pytest.fixture
def short_idle():
    """set(seconds): every service exits after that many idle seconds (restarted to read it); at
    teardown the files are restored and the services restarted with what they say."""
    cfg = IdleConfig()

    def set_idle(seconds):
        cfg.set(seconds)
        stop_all()
    yield set_idle
    cfg.restore()
    stop_all()


def test_idle_services_exit_and_the_next_call_brings_them_back(short_idle):
    short_idle(1)
    with NameWatch(SERVICES.values()) as w:
        first = {s["name"]: s for s in stack.info_json()["services"]}
        assert {s["state"] for s in first.values()} == {"running"}, first
        # Nobody calls them now: each one goes by itself, and it is the instance that just served us.
        for name, bus_name in SERVICES.items():
            gone = w.wait_vanished(bus_name)
            assert gone == w.appeared(bus_name)[0], w.events
            stack.wait_for(lambda: not stack.pid_alive(first[name]["pid"]), what=f"{name} process to exit")
        # The next call starts all four again.
        second = {s["name"]: s for s in stack.info_json()["services"]}
        for name in SERVICES:
            assert second[name]["state"] == "running", second[name]
            assert second[name]["pid"] != first[name]["pid"]


def test_zero_disables_idle_exit(short_idle):
    short_idle(0)
    with NameWatch(SERVICES.values()) as w:
        stack.info_json()
        stack.info_json()
        # 0 is "never", not "at once": the second round trip reached the same four processes.
        for bus_name in SERVICES.values():
            assert len(w.appeared(bus_name)) == 1 and w.vanished(bus_name) == [], w.events


def test_busy_broker_and_fetcher_stay_for_a_slow_pull(short_idle, registry, tmp_path):
    """Idle period 1 s, a download of ~16 s through a throttling proxy: the broker (transfer in flight)
    and the fetcher (download in flight) stay; once the download is done the fetcher goes, while the
    broker keeps the finished transfer readable for its linger time."""
    b, img, big = big_image(tmp_path, 16 * MiB)
    registry.push(b.layout_dir, "latest", "test/idle-busy:v1")
    px = CountingProxy(registry.port, rate=1 * MiB)
    ref = f"{px.host}/test/idle-busy:v1"
    short_idle(1)
    try:
        with NameWatch([BROKER, FETCHER]) as w:
            p = stack.berthctl("images", "pull", ref, timeout=300)
            assert pulled(p) == img.manifest.digest
            assert px.bytes_down >= 16 * MiB
            # The broker held the transfer throughout: one owner, never gone. The fetcher may go once
            # the download is done (the unpack still runs), never during it: one instance served the
            # whole download, in one GET from the first byte to the last.
            assert len(w.appeared(BROKER)) == 1 and w.vanished(BROKER) == [], w.events
            assert len(w.appeared(FETCHER)) == 1, w.events
            gets = px.blob_gets(big.digest)
            assert len(gets) == 1 and not gets[0]["range"], gets
            # Now idle, the fetcher goes by itself; the broker still holds the finished transfer.
            w.wait_vanished(FETCHER)
            t = stack.busctl("--json=short", "call", BROKER, "/org/berth/Broker1", "org.berth.Broker1.Manager",
                             "ListTransfers")
            assert t.returncode == 0, t.stderr
            paths = [row[0] for row in json.loads(t.stdout)["data"][0]]
            assert paths, "the finished transfer is gone although it should linger"
            assert w.vanished(BROKER) == [], w.events
    finally:
        px.close()
        rm_images(ref)


# Libraries only a job needs, loaded only where and when it runs: the unpacker's per-job worker
# (berth-unpack-worker: libarchive, libseccomp, and what libarchive pulls in), the fetcher's first
# request (libcurl and its TLS backends) and its archive children (libarchive).
JOB_LIBRARIES = ("libarchive", "libxml2", "libicu", "libstdc++", "libseccomp", "libcurl", "libssl", "libgnutls",
                 "libkrb5", "libldap")


def test_idle_services_do_not_map_job_libraries():
    # Fresh instances: a fetcher that served a pull a moment ago keeps libcurl until it exits.
    stop_all()
    info = {s["name"]: s for s in stack.info_json()["services"]}
    assert set(info) == set(SERVICES), info
    for name, s in info.items():
        maps = open(f"/proc/{s['pid']}/maps").read()
        # The supervisor compiles each container's seccomp profile itself (the engine runs in its
        # forked children): libseccomp is its own job's library, not a worker's. It exits when idle.
        # The fetcher installs its own system call filter at start (fetcher-seccomp.c, issue 12 f6).
        own = ("libseccomp",) if name in ("supervisor", "fetcher") else ()
        # An ASan build (tools/run-tests --sanitize) links the sanitizer runtime, which needs libstdc++.
        if os.environ.get("BERTH_SANITIZE_BUILD"):
            own += ("libstdc++",)
        mapped = sorted({lib for lib in JOB_LIBRARIES if f"/{lib}" in maps and lib not in own})
        assert mapped == [], f"berth-{name} maps {mapped} while idle"
