#!/usr/bin/python3
"""RSS and PSS of the four berth services: idle (running, nothing in flight), busy (the most seen
while a pull runs through a throttling proxy), idle again after that work, and after idle exit.

Run as root on a machine where tools/dev-up has run (it restarts the installed services and sets
idle-exit-sec for the run; hold the stack lock on shared machines):

    bench/memory.py [--size-mib 48] [--rate-mib 8] [--idle 5]
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP / "tests" / "integration"))

from berthtest import stack  # noqa: E402
from berthtest.images import ImageBuilder, random_file_layer  # noqa: E402
from berthtest.registry import Registry  # noqa: E402
from berthtest.services import IdleConfig, NameWatch, stop_all  # noqa: E402
from test_pull import CountingProxy  # noqa: E402

MiB = 1024 * 1024


def mem(pid):
    """(rss_kib, pss_kib) of pid, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    v = {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines()[1:] if line.split()[0] in ("Rss:", "Pss:")}
    return v["Rss"], v["Pss"]


def children(pid):
    try:
        return [int(k) for k in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def sample():
    out = {}
    for name, bus_name in stack.SERVICES.items():
        pid = stack.name_pid(bus_name)
        out[name] = mem(pid) if pid else None
        if name == "unpacker" and pid:
            kids = [m for m in (mem(k) for k in children(pid)) if m]
            out["unpack-worker"] = max(kids) if kids else None
    return out


def fmt(m):
    return "%5.1f / %5.1f" % (m[0] / 1024, m[1] / 1024) if m else "    (not running)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=48)
    ap.add_argument("--rate-mib", type=int, default=8)
    ap.add_argument("--idle", type=int, default=5)
    a = ap.parse_args()

    cfg = IdleConfig()
    cfg.set(a.idle)
    stop_all()
    tmp = Path(tempfile.mkdtemp(prefix="berth-bench-mem-"))
    ref = None
    try:
        with Registry() as reg:
            b = ImageBuilder(tmp / "layout")
            layer = b.add_layer(random_file_layer(a.size_mib * MiB, seed=7), compression="gzip", compresslevel=1)
            b.add_image([layer], tag="latest")
            reg.push(b.layout_dir, "latest", "bench/mem:v1", timeout=600)
            px = CountingProxy(reg.port, rate=a.rate_mib * MiB)
            ref = f"{px.host}/bench/mem:v1"

            stack.info_json()
            idle = sample()

            busy = {}
            proc = subprocess.Popen([str(stack.BERTHCTL), "--no-ask-password", "images", "pull", "-q", ref],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            while proc.poll() is None:
                for k, m in sample().items():
                    if m and (k not in busy or m[0] > busy[k][0]):
                        busy[k] = m
                time.sleep(0.05)
            if proc.returncode != 0:
                sys.exit("pull failed: " + proc.stderr)
            after = sample()

            with NameWatch(stack.SERVICES.values()) as w:
                # The broker lingers with the finished transfer for a minute; then everything goes.
                for bus_name in stack.SERVICES.values():
                    if stack.name_pid(bus_name):
                        w.wait_vanished(bus_name, timeout=120)
            gone = sample()
            px.close()
    finally:
        if ref:
            stack.berthctl("images", "rm", ref)
        cfg.restore()
        stop_all()
        subprocess.run(["rm", "-rf", str(tmp)])

    print(f"RSS / PSS in MiB (pull of one {a.size_mib} MiB layer at {a.rate_mib} MiB/s; idle-exit-sec={a.idle})")
    print("%-14s %-18s %-18s %-18s %-18s" % ("service", "idle", "busy (max)", "idle after pull", "after idle exit"))
    for k in ["broker", "fetcher", "unpacker", "unpack-worker", "supervisor"]:
        print("%-14s %-18s %-18s %-18s %-18s" % (k, fmt(idle.get(k)), fmt(busy.get(k)), fmt(after.get(k)),
                                                 fmt(gone.get(k))))


if __name__ == "__main__":
    main()
