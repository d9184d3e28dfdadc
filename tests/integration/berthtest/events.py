"""Waiting on berth's D-Bus signals instead of sleeping or polling.

:class:`TransferEvents` subscribes (before anything starts, so nothing slips past) to the broker's
Transfer signals -- Progress(tt a(ssstt)) and Finished(ss) -- on the system bus, and blocks in a GLib
main context of its own until a condition over the signals received so far holds. The ``timeout`` of
every wait only guards against a hang (it fails the test); no result depends on timing.
"""
import threading

from gi.repository import Gio, GLib

BROKER = "org.berth.Broker1"
TRANSFER = "org.berth.Broker1.Transfer"
HANG_GUARD = 120


class TransferEvents:
    def __init__(self):
        self.ctx = GLib.MainContext.new()
        self.signals = []  # (path, name, args) in arrival order
        self.ctx.push_thread_default()
        try:
            # A connection of our own: its signals are dispatched in self.ctx only.
            address = Gio.dbus_address_get_for_bus_sync(Gio.BusType.SYSTEM, None)
            self.bus = Gio.DBusConnection.new_for_address_sync(
                address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT |
                Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
            self.subs = [self.bus.signal_subscribe(None, TRANSFER, name, None, None, Gio.DBusSignalFlags.NONE,
                                                   self._on_signal)
                         for name in ("Progress", "Finished")]
        finally:
            self.ctx.pop_thread_default()

    def _on_signal(self, conn, sender, path, iface, name, params):
        self.signals.append((path, name, params.unpack()))

    def pull_image(self, ref, platform="", flags=0):
        """PullImage through this connection: transfer signals are sent only to the connections that
        started, joined or read the transfer (issue 12 finding 7), so the watcher starts it itself."""
        self.ctx.push_thread_default()
        try:
            reply = self.bus.call_sync(BROKER, "/org/berth/Broker1", "org.berth.Broker1.Manager", "PullImage",
                                       GLib.Variant("(sst)", (ref, platform, flags)), GLib.VariantType("(o)"),
                                       Gio.DBusCallFlags.NONE, 60000, None)
        finally:
            self.ctx.pop_thread_default()
        return reply.unpack()[0]

    def close(self):
        for s in self.subs:
            self.bus.signal_unsubscribe(s)
        self.bus.close_sync(None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wait(self, condition, what, timeout=HANG_GUARD):
        """Dispatch signals until condition() is true; returns its value."""
        expired = threading.Event()

        def on_timeout():
            expired.set()
            self.ctx.wakeup()

        guard = threading.Timer(timeout, on_timeout)
        guard.daemon = True
        guard.start()
        try:
            while True:
                v = condition()
                if v:
                    return v
                if expired.is_set():
                    raise AssertionError(f"no {what} within {timeout} s; signals: {self.signals[-5:]}")
                self.ctx.iteration(True)  # blocks until a signal arrives, or the hang guard wakes it
        finally:
            guard.cancel()

    # ---- conditions ---------------------------------------------------------------------------------

    def finished(self, path):
        """Finished's (result, error) for the transfer at path, or None."""
        for p, name, args in self.signals:
            if p == path and name == "Finished":
                return args
        return None

    def wait_finished(self, path, timeout=HANG_GUARD):
        return self.wait(lambda: self.finished(path), f"Finished from {path}", timeout)

    def progress(self, path):
        return [args for p, name, args in self.signals if p == path and name == "Progress"]
