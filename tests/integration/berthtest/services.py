"""The four services as processes that come and go: bus name events, activation, restarts, and the
idle-exit-sec= setting of each (docs/configuration.md).

NameWatch subscribes to NameOwnerChanged on the real system bus *before* a test acts, so that no
appearance or disappearance of a name can slip past; waits are bounded, never timed assertions.
"""
import os
import signal
import time
from pathlib import Path

from gi.repository import Gio, GLib

from . import stack

ETC = Path("/etc/berth")

# Where each service reads idle-exit-sec= (file, group).
IDLE_CONFIG = {
    "broker": ("broker.conf", "broker"),
    "fetcher": ("registries.conf", "fetcher"),
    "unpacker": ("unpacker.conf", "unpacker"),
    "supervisor": ("supervisor.conf", "supervisor"),
}


class NameWatch:
    """Records every NameOwnerChanged of the given bus names from construction on."""

    def __init__(self, names):
        self.names = set(names)
        self.events = []  # (name, old_owner, new_owner), in bus order
        self.ctx = GLib.MainContext.new()
        self.ctx.push_thread_default()
        try:
            # A private connection whose signals are dispatched in our own context.
            addr = Gio.dbus_address_get_for_bus_sync(Gio.BusType.SYSTEM, None)
            flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
            self.conn = Gio.DBusConnection.new_for_address_sync(addr, flags, None, None)
            self.sub = self.conn.signal_subscribe("org.freedesktop.DBus", "org.freedesktop.DBus", "NameOwnerChanged",
                                                  "/org/freedesktop/DBus", None, Gio.DBusSignalFlags.NONE,
                                                  self._on_signal, None)
            # A round trip: the match is installed at the bus once this returns.
            self.conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId",
                                None, None, Gio.DBusCallFlags.NONE, -1, None)
        finally:
            self.ctx.pop_thread_default()

    def _on_signal(self, conn, sender, path, iface, member, params, data):
        name, old, new = params.unpack()
        if name in self.names:
            self.events.append((name, old, new))

    def pump(self):
        while self.ctx.pending():
            self.ctx.iteration(False)

    def vanished(self, name):
        """Owners of name that went away since the watch started."""
        self.pump()
        return [old for n, old, new in self.events if n == name and old and not new]

    def appeared(self, name):
        self.pump()
        return [new for n, old, new in self.events if n == name and new]

    def wait_vanished(self, name, timeout=60.0):
        """Wait (bounded) until some owner of name has gone; returns that owner."""
        deadline = time.monotonic() + timeout
        while True:
            gone = self.vanished(name)
            if gone:
                return gone[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} did not go away within {timeout}s; events: {self.events}")
            # Block in the context until a signal arrives, waking up now and then to check the deadline.
            src = GLib.timeout_source_new(200)
            src.set_callback(lambda *a: False)
            src.attach(self.ctx)
            self.ctx.iteration(True)
            src.destroy()

    def close(self):
        self.conn.signal_unsubscribe(self.sub)
        self.conn.close_sync(None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def activate(bus_name):
    """Start bus_name by activation if it is not running (as the next call would); returns its pid."""
    p = stack.busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                     "StartServiceByName", "su", bus_name, "0")
    assert p.returncode == 0, f"could not start {bus_name}: {p.stderr}"
    pid = stack.name_pid(bus_name)
    assert pid, f"{bus_name} has no owner after activation"
    return pid


def stop_all():
    """SIGTERM every running berth service and wait until each has gone: the next call starts them
    again, reading their configuration afresh."""
    for bus_name in stack.SERVICES.values():
        pid = stack.name_pid(bus_name)
        if pid:
            os.kill(pid, signal.SIGTERM)
            stack.wait_for(lambda: not stack.pid_alive(pid), timeout=30, what=f"{bus_name} to stop")
        stack.wait_for(lambda: stack.name_pid(bus_name) is None, timeout=30, what=f"{bus_name} released")


class IdleConfig:
    """Sets idle-exit-sec= for the four services; restore() puts the files back as they were."""

    def __init__(self):
        self.saved = {}

    def set(self, seconds):
        ETC.mkdir(mode=0o755, exist_ok=True)
        for name, (file, group) in IDLE_CONFIG.items():
            path = ETC / file
            if path not in self.saved:
                self.saved[path] = path.read_bytes() if path.exists() else None
            base = (self.saved[path] or b"").decode()
            # GKeyFile merges a group given twice (the last value wins), so the original stays intact.
            text = base + ("\n" if base and not base.endswith("\n") else "") + f"\n[{group}]\nidle-exit-sec={seconds}\n"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)

    def restore(self):
        for path, data in self.saved.items():
            if data is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(data)
        self.saved = {}
