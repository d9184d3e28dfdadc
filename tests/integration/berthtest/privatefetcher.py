"""berth-fetcher (the one built in $BERTH_BUILD_DIR) on a private bus, with its own state and config
directories, called as the broker's user: tests of the fetcher's own behaviour that need no stack.

    with PrivateFetcher(tmp) as f:
        f.config('[registry "127.0.0.1:5000"]\\nplain-http=true\\n')
        p = f.call("Resolve", "127.0.0.1:5000/x/y:latest", 0)
"""
import os
import shutil
import subprocess
import time
from pathlib import Path

from .privatebus import PrivateBus

TOP = Path(__file__).resolve().parents[3]
BIN = Path(os.environ.get("BERTH_BUILD_DIR", TOP / "build")) / "services/fetcher/berth-fetcher"
HANG_GUARD = 120
SIGNATURES = {"GetInfo": "", "Resolve": "st", "FetchBlob": "sstst", "FetchBlobFor": "sstsut", "Login": "sss"}


class PrivateFetcher:
    def __init__(self, tmp):
        assert BIN.exists(), f"{BIN} not built"
        self.tmp = Path(tmp)
        self.state, self.conf = self.tmp / "state", self.tmp / "conf"
        for d in (self.state, self.state / "fetcher", self.conf):
            d.mkdir()
            shutil.chown(d, "berth-fetcher", "berth-fetcher")
        self.bus = PrivateBus()
        self.log = self.tmp / "fetcher.log"
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus.address, BERTH_STATE_DIR=str(self.state),
                   BERTH_CONFIG_DIR=str(self.conf))
        self.proc = subprocess.Popen(["runuser", "-u", "berth-fetcher", "--", str(BIN), "-v"], env=env,
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        end = time.monotonic() + HANG_GUARD
        while self.call("GetInfo").returncode != 0:
            assert self.proc.poll() is None and time.monotonic() < end, self.log.read_text()
            time.sleep(0.05)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def config(self, text):
        (self.conf / "registries.conf").write_text(text)

    def trust_ca(self, host, ca_path):
        d = self.conf / "certs.d" / host
        d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ca_path, d / "ca.crt")
        for p in (self.conf / "certs.d", d, d / "ca.crt"):
            p.chmod(0o755 if p.is_dir() else 0o644)

    def call(self, method, *args, bg=False, stdin=None):
        sig = SIGNATURES[method]
        cmd = ["runuser", "-u", "berth-broker", "--", "busctl", f"--address={self.bus.address}", "--json=short",
               "--timeout=300", "call", "org.berth.Fetcher1", "/org/berth/Fetcher1", "org.berth.Fetcher1",
               method] + ([sig] if sig else []) + [str(a) for a in args]
        if bg:
            return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    def fetch(self, name, desc, uid=None, bg=False):
        # FETCHER_NO_UID: call FetchBlob even with a uid, to run the tests against a fetcher from before
        # FetchBlobFor (they must fail there for the reason they test).
        if uid is None or os.environ.get("FETCHER_NO_UID"):
            return self.call("FetchBlob", name, desc.digest, desc.size, desc.media_type, 0, bg=bg)
        return self.call("FetchBlobFor", name, desc.digest, desc.size, desc.media_type, uid, 0, bg=bg)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.bus.close()
