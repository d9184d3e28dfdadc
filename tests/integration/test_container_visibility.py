"""Who sees a container: property reads (Get/GetAll) on container objects and the signals about them.

Member A owns a container. Member B (also in group berth), a stranger and an admin granted
org.berth.container-manage-any read its properties with busctl; then listeners on the system bus, each
connected as its user, watch every signal they can get (plain match rules, and eavesdropping where the
bus allows it) while A's container starts and stops: A's own listener gets the PropertiesChanged, B's and
the stranger's get nothing that names A's container, from the broker or from the supervisor.
"""
import json
import subprocess
import tempfile
from pathlib import Path

import pytest

from berthtest import stack
from berthtest.containers import berthctl, imported_busybox, ok

IMAGE = "localhost/berth-visibility-test:latest"
MEMBER_B = "berth-test-member2"
ADMIN = "berth-test-visadmin"
ADMIN_RULE = Path("/etc/polkit-1/rules.d/49-berth-test-visibility.rules")
IFACE = "org.berth.Broker1.Container"

LISTENER = r'''
import json, sys
import dbus
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

DBusGMainLoop(set_as_default=True)
bus = dbus.SystemBus()
path = sys.argv[1]
seen = []

def record(_bus, msg):
    if msg.get_type() == 4:  # signal
        seen.append({"sender": str(msg.get_sender()), "path": str(msg.get_path()),
                     "interface": str(msg.get_interface()), "member": str(msg.get_member()),
                     "args": repr(msg.get_args_list())})

bus.add_message_filter(record)
bus.add_match_string("type='signal'")
try:
    bus.add_match_string("type='signal',eavesdrop='true'")
except dbus.exceptions.DBusException:
    pass
read = None
try:
    props = bus.call_blocking("org.berth.Broker1", path, "org.freedesktop.DBus.Properties", "GetAll", "s", [sys.argv[2]])
    read = str(props.get("Status"))
except dbus.exceptions.DBusException as e:
    read = e.get_dbus_name()
print(json.dumps({"ready": True, "read": read}), flush=True)

def finish(*_):
    sys.stdin.readline()
    # Whatever the broker and the supervisor sent us before they answer these has arrived by then.
    for name, p in (("org.berth.Broker1", "/org/berth/Broker1"), ("org.berth.Supervisor1", "/org/berth/Supervisor1")):
        try:
            bus.call_blocking(name, p, "org.freedesktop.DBus.Peer", "Ping", "", [])
        except dbus.exceptions.DBusException:
            pass
    print(json.dumps(seen), flush=True)
    loop.quit()
    return False

loop = GLib.MainLoop()
GLib.io_add_watch(sys.stdin, GLib.IO_IN | GLib.IO_HUP, finish)
loop.run()
'''


@pytest.fixture(scope="module")
def image(tmp_path_factory, member, outsider):
    with imported_busybox(tmp_path_factory, IMAGE):
        stack.ensure_user(MEMBER_B, groups=["berth"])
        stack.ensure_user(ADMIN, groups=["berth"])
        yield IMAGE


@pytest.fixture
def container(image, member):
    cid = ok(berthctl("run", "-d", "--name", "vis-a", image, "sleep", "1000", user=member)).stdout.strip()
    yield cid, f"/org/berth/Broker1/container/{cid}"
    berthctl("rm", "-f", "vis-a")


def get(path, prop, user):
    return stack.busctl("get-property", "org.berth.Broker1", path, IFACE, prop, user=user)


def get_all(path, user):
    return stack.busctl("call", "org.berth.Broker1", path, "org.freedesktop.DBus.Properties", "GetAll", "s",
                        IFACE, user=user)


def test_property_reads_follow_ownership(container, member, outsider):
    cid, path = container
    assert ok(get(path, "Status", member)).stdout.split() == ["s", '"running"']
    assert cid in ok(get_all(path, member)).stdout
    assert ok(get(path, "Name", None)).stdout.split() == ["s", '"vis-a"']  # root
    for user in (MEMBER_B, outsider):
        for p in (get(path, "Status", user), get(path, "Options", user), get_all(path, user)):
            assert p.returncode != 0, p.stdout
            assert "org.berth.container-manage-any" in p.stderr or "Access denied" in p.stderr, p.stderr
            assert "sleep" not in p.stdout and "running" not in p.stdout
    # An admin granted container-manage-any by a rules file may read.
    ADMIN_RULE.write_text('polkit.addRule(function(action, subject) {\n'
                          '  if (action.id == "org.berth.container-manage-any" && subject.user == "%s")\n'
                          '    return polkit.Result.YES;\n});\n' % ADMIN)
    try:
        stack.wait_for(lambda: get(path, "Status", ADMIN).returncode == 0, timeout=30,
                       what="polkitd loading the rule")
        assert ok(get(path, "Name", ADMIN)).stdout.split() == ["s", '"vis-a"']
        out = ok(get_all(path, ADMIN)).stdout
        assert '"vis-a"' in out and '"running"' in out
    finally:
        ADMIN_RULE.unlink()


def test_signals_reach_the_owner_only(container, member, outsider):
    cid, path = container
    d = Path(tempfile.mkdtemp(prefix="berth-vis-"))
    d.chmod(0o755)
    script = d / "listener.py"
    script.write_text(LISTENER)
    script.chmod(0o644)
    listeners = {}
    try:
        for who in (member, MEMBER_B, outsider):
            proc = subprocess.Popen(["runuser", "-u", who, "--", "/usr/bin/python3", str(script), path, IFACE],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            first = json.loads(proc.stdout.readline() or "{}")
            assert first.get("ready"), proc.stderr.read()
            listeners[who] = (proc, first["read"])
        assert listeners[member][1] == "running"
        assert listeners[MEMBER_B][1] == listeners[outsider][1] == "org.berth.Error.AccessDenied"
        ok(berthctl("kill", "vis-a", user=member))
        assert berthctl("wait", "vis-a", user=member).returncode == 137
        seen = {}
        for who, (proc, _) in listeners.items():
            out, err = proc.communicate("done\n", timeout=60)
            seen[who] = json.loads(out)
    finally:
        for proc, _ in listeners.values():
            if proc.poll() is None:
                proc.kill()
    owner = [s for s in seen[member] if s["path"] == path and s["member"] == "PropertiesChanged"]
    assert any("stopped" in s["args"] for s in owner), seen[member]
    for who in (MEMBER_B, outsider):
        leaked = [s for s in seen[who] if cid in s["path"] or cid in s["args"]
                  or s["interface"] in (IFACE, "org.berth.Supervisor1")]
        assert leaked == [], (who, leaked)
