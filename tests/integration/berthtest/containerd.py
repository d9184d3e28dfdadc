"""A private containerd for comparisons: its own root, state and socket under a temp dir.

Nothing is shared with a containerd the host may run: the gRPC socket, root and state all live in the
directory given; only the overlayfs snapshotter and the content/diff plugins are needed.
"""
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CONFIG = """version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.native",
                    "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
"""


class Containerd:
    def __init__(self, base=None):
        self.base = Path(base or tempfile.mkdtemp(prefix="berth-ctrd-"))
        self.sock = str(self.base / "containerd.sock")
        self.proc = None

    def start(self, timeout=30):
        for d in ("root", "state"):
            (self.base / d).mkdir(parents=True, exist_ok=True)
        cfg = self.base / "config.toml"
        cfg.write_text(CONFIG.format(root=self.base / "root", state=self.base / "state", sock=self.sock))
        self.log = open(self.base / "containerd.log", "wb")
        self.proc = subprocess.Popen(["containerd", "--config", str(cfg)], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(self.sock) and self.ctr("version").returncode == 0:
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("containerd did not come up:\n" + (self.base / "containerd.log").read_text()[-3000:])

    def ctr(self, *args, timeout=600, check=False):
        p = subprocess.run(["ctr", "--address", self.sock, *args], capture_output=True, text=True,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def pull(self, ref, timeout=1800):
        return self.ctr("images", "pull", "--plain-http", ref, timeout=timeout, check=True)

    def mount(self, ref, target):
        return self.ctr("images", "mount", ref, str(target), check=True)

    def unmount(self, target):
        return self.ctr("images", "unmount", "--rm", str(target))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()

    def destroy(self):
        self.stop()
        # Snapshots may still be mounted if a test failed half-way: unmount what lies below us first.
        with open("/proc/self/mountinfo") as f:
            mps = [l.split()[4] for l in f]
        for mp in sorted((m for m in mps if m.startswith(str(self.base))), key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.destroy()
