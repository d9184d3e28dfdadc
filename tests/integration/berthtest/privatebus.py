"""A private dbus-daemon with an allow-everything policy, for testing one service on its own.

On such a bus only the services' own checks (bus_require_broker, polkit) stand between callers and
methods, which is exactly what some tests need to prove.
"""
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import stack

PERMISSIVE_BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""

SERVICE_USERS = {"fetcher": "berth-fetcher", "broker": "berth-broker"}


class PrivateBus:
    def __init__(self):
        # Not under pytest's tmp_path: its parents are 0700 and the services run as other users.
        self.dir = Path(tempfile.mkdtemp(prefix="berth-bus-"))
        self.dir.chmod(0o755)
        self.socket = self.dir / "bus"
        self.address = f"unix:path={self.socket}"
        conf = self.dir / "bus.conf"
        conf.write_text(PERMISSIVE_BUS_CONF.format(socket=self.socket))
        self.daemon = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork", "--nopidfile"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack.wait_for(self.socket.exists, what="private bus socket")
        self.socket.chmod(0o777)
        self.procs = []

    def start(self, name, env=None, binary=None):
        """Start berth-NAME (as its service user) on this bus; wait until it owns its name. binary: another
        executable than the installed one (the build under test)."""
        user = SERVICE_USERS.get(name)
        extra = [f"{k}={v}" for k, v in (env or {}).items()]
        cmd = ["env", f"DBUS_SYSTEM_BUS_ADDRESS={self.address}", *extra, str(binary or stack.LIBEXEC / f"berth-{name}")]
        if user:
            cmd = ["runuser", "-u", user, "--"] + cmd
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        bus_name = stack.SERVICES[name]

        def up():
            if p.poll() is not None:
                raise AssertionError(f"berth-{name} exited with {p.returncode}: {p.stderr.read()}")
            return stack.busctl("status", bus_name, address=self.address).returncode == 0
        stack.wait_for(up, what=f"{bus_name} on the private bus")
        return p

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.daemon.terminate()
        self.daemon.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
