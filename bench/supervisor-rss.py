#!/usr/bin/python3
"""Memory of berth-shim per container and of berth-supervisor with N running containers.

Runs the build under test (BERTH_BUILD_DIR, default ./build) on a private bus, as
tests/integration/test_supervisor_containers.py does: N detached `sleep` containers of a busybox
image, then VmRSS of every shim and of the supervisor. Root only. Usage: bench/supervisor-rss.py [-n N]
"""
import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
import test_supervisor_containers as T  # noqa: E402


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100)
    n = ap.parse_args().n
    env = T.Env()
    env.start()
    try:
        digest = env.image()
        before = rss_kib(env.proc.pid)
        ids = []
        for i in range(n):
            cid = env.new_id()
            res = env.call(op="create", id=cid, request=env.request(digest, name=f"rss{i}", detach=True,
                                                                    cmd=["sleep", "100000"]))
            assert "error" not in res, res
            env.call(op="start", id=cid)
            ids.append(cid)
        lst = env.call(op="list")
        shims = []
        for cid in ids:
            init = lst[cid]["Pid"]
            ppid = int(next(l.split()[1] for l in Path(f"/proc/{init}/status").read_text().splitlines()
                            if l.startswith("PPid:")))
            shims.append(rss_kib(ppid))
        sup = rss_kib(env.proc.pid)
        print(f"containers running:          {n}")
        print(f"berth-shim VmRSS per container: median {statistics.median(shims)} KiB, "
              f"min {min(shims)} KiB, max {max(shims)} KiB")
        print(f"berth-supervisor VmRSS:       {before} KiB with none, {sup} KiB with {n} running")
        for cid in ids:
            env.call(op="delete", id=cid, flags=1)
    finally:
        env.close()


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("root only")
    main()
