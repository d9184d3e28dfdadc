"""--health-on-failure=restart end to end (issue 9), through the installed stack, as root and as a member of
group berth: an unhealthy container is killed and started again by the supervisor whatever its --restart
policy (podman's semantics), through the restart policy's own path. RestartCount counts it, a new init
runs, the health state starts over as "starting", and the events (health_status unhealthy, die, start)
and the container object's PropertiesChanged tell it. A user's stop is never overridden; a supervisor
killed meanwhile restarts it when it is back. docs/api.md, "Health checks", has the rules.
"""
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from berthtest import stack
from berthtest.containers import berthctl, imported_busybox, ls, ok, state
from berthtest.fixtures import *  # noqa: F401,F403

IMAGE = "localhost/berth-health-restart-test:latest"
RUNTIME = Path("/run/berth/containers")
WHO = ["root", "member"]

# The first run is healthy until the test creates /tmp/bad; then it fails its check: unhealthy, restarted.
# Every later run makes the check hang (in flight until its 1 h timeout), so a restarted container stays
# "starting" for as long as the test looks at it.
FIRST_RUN_FAILS = ("sh", "-c", "if [ -e /ran ]; then touch /hang; fi; touch /ran; echo up; exec sleep 1000")
CHECK = "if [ -e /hang ]; then exec sleep 3600; fi; test ! -e /tmp/bad"
HEALTH = ("--health-cmd", CHECK, "--health-interval", "200ms", "--health-retries", "2", "--health-timeout", "1h",
          "--health-on-failure", "restart")

# Prints one JSON line per PropertiesChanged of the container object (as the user it runs as). The broker
# sends them to connections that read the container's properties: a GetAll first.
LISTENER = r'''
import json, sys
import dbus
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

DBusGMainLoop(set_as_default=True)
bus = dbus.SystemBus()

def changed(iface, props, invalidated):
    print(json.dumps({str(k): (int(v) if isinstance(v, (dbus.UInt32, dbus.Int32, dbus.UInt64)) else str(v))
                      for k, v in props.items() if str(k) in ("Status", "Health", "RestartCount", "Pid")}),
          flush=True)

bus.add_signal_receiver(changed, "PropertiesChanged", "org.freedesktop.DBus.Properties", "org.berth.Broker1",
                        sys.argv[1])
bus.call_blocking("org.berth.Broker1", sys.argv[1], "org.freedesktop.DBus.Properties", "GetAll", "s",
                  ["org.berth.Broker1.Container"])
print(json.dumps({"ready": True}), flush=True)
GLib.MainLoop().run()
'''


@pytest.fixture(scope="module")
def image(tmp_path_factory, member):
    with imported_busybox(tmp_path_factory, IMAGE, remove_containers=True):
        yield IMAGE


def as_user(who, member):
    return member if who == "member" else None


def container_id(name, user=None):
    return ls(user)[name]["Id"]


def restart_record(cid):
    """The supervisor's restart record (restart-policy.h), read as root."""
    return json.loads((RUNTIME / cid / "restart").read_text())


def popen_user(cmd, user):
    if user:
        cmd = ["runuser", "-u", user, "--"] + cmd
    # Its own process group: killing runuser alone would leave its child running.
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def end(*procs):
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def read_until(proc, until, what, hang_guard=120):
    """JSON lines from proc until until(line) holds; all of them. The hang guard only ends a stuck test (it
    kills proc: the stream ends and the test fails), it is no threshold."""
    got = []
    guard = threading.Timer(hang_guard, lambda: end(proc))
    guard.start()
    try:
        while True:
            line = proc.stdout.readline()
            assert line, f"{what}: the stream ended: {got}\n{proc.stderr.read()}"
            got.append(json.loads(line))
            if until(got[-1]):
                return got
    finally:
        guard.cancel()


def events(name, user):
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    return popen_user([str(stack.BERTHCTL), "--no-ask-password", "events", "--json", "--since", since,
                       "--filter", f"container={name}"], user)


def listener(cid, user):
    d = Path(tempfile.mkdtemp(prefix="berth-health-"))
    d.chmod(0o755)
    script = d / "listener.py"
    script.write_text(LISTENER)
    script.chmod(0o644)
    proc = popen_user(["/usr/bin/python3", str(script), f"/org/berth/Broker1/container/{cid}"], user)
    read_until(proc, lambda l: l.get("ready"), "listener")
    return proc


def restarted_and_starting(name, user):
    s = state(name, user)
    return s if (s["Status"], s["RestartCount"], s["Health"]) == ("running", 1, "starting") else None


@pytest.mark.parametrize("who", WHO)
def test_unhealthy_container_is_restarted_with_restart_no(image, member, who, names):
    user = as_user(who, member)
    name = f"hr-{who}"
    names.append(name)
    ev = events(name, user)
    props = None
    try:
        ok(berthctl("run", "-d", "--name", name, "--restart", "no", *HEALTH, image, *FIRST_RUN_FAILS, user=user))
        cid = container_id(name, user)
        props = listener(cid, user)
        first = stack.wait_for(lambda: (lambda s: s if s["Health"] == "healthy" else None)(state(name, user)),
                               timeout=60, what="healthy")
        ok(berthctl("exec", name, "touch", "/tmp/bad", user=user))
        # ls and inspect report it unhealthy (it stays so while stopped, until the new run starts over).
        got = read_until(ev, lambda e: e["action"] == "health_status" and
                         e["attributes"]["healthStatus"] == "unhealthy", "unhealthy")
        got += read_until(ev, lambda e: e["action"] == "start", "the restart's start")
        got += read_until(ev, lambda e: e["action"] == "health_status", "health after the restart")
        s = stack.wait_for(lambda: restarted_and_starting(name, user), timeout=60, what="restarted, starting")
        # ls asks the supervisor itself.
        c = ls(user)[name]
        assert (c["Status"], c["RestartCount"], c["Health"], c["Pid"]) == ("running", 1, "starting", s["Pid"]), c
        seen = read_until(props, lambda p: p.get("Health") == "starting" and p.get("RestartCount") == 1,
                          "PropertiesChanged")
    finally:
        end(*(p for p in (ev, props) if p))
    acts = [(e["action"], e["attributes"].get("healthStatus") or e["attributes"].get("exitCode"))
            for e in got if e["action"] in ("health_status", "die", "start", "stop")]
    # Killed when unhealthy (not a user's stop: no "stop"), started again, and the new run's health starts
    # over.
    i = acts.index(("health_status", "unhealthy"))
    assert acts[i:] == [("health_status", "unhealthy"), ("die", "137"), ("start", None),
                        ("health_status", "starting")], acts
    # PropertiesChanged told the same: unhealthy, then stopped, then running again, counted, starting.
    health = [p["Health"] for p in seen if "Health" in p]
    assert health[-1] == "starting" and "unhealthy" in health, seen
    assert any(p.get("Status") == "stopped" for p in seen), seen
    # A new init, and the log holds both runs.
    assert s["Pid"] and first["Pid"] and s["Pid"] != first["Pid"]
    assert ok(berthctl("logs", name, user=user)).stdout == "up\nup\n"
    rec = restart_record(cid)
    assert (rec["policy"], rec["count"], rec["health_restarts"], rec["health_restart"]) == ("no", 1, 1, False)


def test_health_restarts_are_not_bounded_by_on_failure_n_and_a_stop_ends_them(image, names):
    """on-failure:1 bounds the policy's own restarts: a check that always fails restarts it again and again
    (each run's health starts over, so each run acts once); a user's stop, whether it comes while the
    container runs or while it waits for its next restart, ends them."""
    name = "hr-always-fails"
    names.append(name)
    ok(berthctl("run", "-d", "--name", name, "--restart", "on-failure:1", "--health-cmd", "false",
                "--health-interval", "200ms", "--health-retries", "2", "--health-on-failure", "restart", image,
                "sh", "-c", "echo up; exec sleep 1000"))
    cid = ls()[name]["Id"]
    stack.wait_for(lambda: state(name)["RestartCount"] >= 3, timeout=120, what="three health restarts")
    ok(berthctl("stop", "-t", "0", name))
    st = stack.wait_for(lambda: (lambda s: s if s["Status"] == "stopped" else None)(state(name)), timeout=60,
                        what="stopped")
    rec = restart_record(cid)
    # Nothing is due any more: a stopped container with the user's stop recorded and no health restart
    # asked is never started again by the supervisor (restart-policy.c).
    assert (rec["stopped_by_user"], rec["health_restart"]) == (True, False), rec
    assert rec["count"] == rec["health_restarts"] >= 3 and rec["policy"] == "on-failure:1", rec
    assert ls()[name]["RestartCount"] == st["RestartCount"] == rec["count"]


@pytest.mark.parametrize("who", WHO)
def test_a_users_stop_while_unhealthy_is_not_overridden(image, member, who, names):
    user = as_user(who, member)
    name = f"hr-stop-{who}"
    names.append(name)
    # Its init ignores SIGTERM: the user's stop waits (up to its timeout) while the check turns unhealthy.
    ok(berthctl("run", "-d", "--name", name, "--restart", "always", "--health-cmd", "test ! -e /tmp/bad",
                "--health-interval", "200ms", "--health-retries", "2", "--health-on-failure", "restart", image,
                "sh", "-c", "trap '' TERM; exec sleep 1000", user=user))
    cid = ls(user)[name]["Id"]
    stack.wait_for(lambda: state(name, user)["Health"] == "healthy", timeout=60, what="healthy")
    stopper = popen_user([str(stack.BERTHCTL), "--no-ask-password", "stop", "-t", "600", name], user)
    try:
        stack.wait_for(lambda: restart_record(cid)["stopped_by_user"], timeout=60, what="the stop recorded")
        ok(berthctl("exec", name, "touch", "/tmp/bad", user=user))
        stack.wait_for(lambda: state(name, user)["Health"] == "unhealthy", timeout=60, what="unhealthy")
        # The supervisor turned it unhealthy and acted in one go; it is still there to run this: not
        # killed, not to be restarted.
        ok(berthctl("exec", name, "true", user=user))
        assert restart_record(cid)["health_restart"] is False
        # The user's stop ends as the user says (here: a kill).
        ok(berthctl("kill", name, user=user))
        assert stopper.wait(timeout=120) == 0, stopper.stderr.read()
    finally:
        end(stopper)
    st = stack.wait_for(lambda: (lambda s: s if s["Status"] == "stopped" else None)(state(name, user)),
                        timeout=60, what="stopped")
    rec = restart_record(cid)
    assert (st["RestartCount"], rec["count"], rec["stopped_by_user"], rec["health_restart"]) == (0, 0, True, False)


def test_health_restart_goes_on_after_a_supervisor_sigkill(image, names):
    """The supervisor is killed as soon as the health kill is seen: whether it died before the restart or
    while setting it up, the supervisor that comes back finishes it (the request is in the restart
    record)."""
    name = "hr-supkill"
    names.append(name)
    ev = events(name, None)
    try:
        ok(berthctl("run", "-d", "--name", name, "--restart", "no", *HEALTH, image, *FIRST_RUN_FAILS))
        first = stack.wait_for(lambda: (lambda s: s if s["Health"] == "healthy" else None)(state(name)),
                               timeout=60, what="healthy")
        ok(berthctl("exec", name, "touch", "/tmp/bad"))
        read_until(ev, lambda e: e["action"] == "die", "the health kill")
        sup = stack.name_pid("org.berth.Supervisor1")
        os.kill(sup, signal.SIGKILL)
        stack.wait_for(lambda: not stack.pid_alive(sup), what="supervisor gone")
    finally:
        end(ev)
    # ls asks the supervisor (bus activation brings it back); then the broker's mirror follows.
    stack.wait_for(lambda: (lambda c: c["Status"] == "running" and c["RestartCount"] >= 1 and
                            c["Health"] == "starting")(ls()[name]), timeout=60, what="restarted")
    s = stack.wait_for(lambda: (lambda s: s if (s["Status"], s["Health"]) == ("running", "starting") and
                                s["RestartCount"] >= 1 else None)(state(name)), timeout=60, what="mirrored")
    assert s["Pid"] != first["Pid"]
    rec = restart_record(ls()[name]["Id"])
    assert rec["health_restart"] is False and rec["health_restarts"] == rec["count"] >= 1, rec


def test_health_on_failure_stop_stops_it_as_a_user_would(image, member, names):
    """podman's stop action: SIGTERM (the init's handler exits 3: a clean stop, not a kill), and as after a
    user's stop the restart policy (on-failure here, the exit being non-zero) leaves it stopped."""
    name = "hr-stop-action"
    names.append(name)
    ok(berthctl("run", "-d", "--name", name, "--restart", "on-failure", "--health-cmd", "test ! -e /tmp/bad",
                "--health-interval", "200ms", "--health-retries", "2", "--health-on-failure", "stop", image,
                "sh", "-c", "trap 'exit 3' TERM; while :; do sleep 1 & wait $!; done", user=member))
    cid = ls(member)[name]["Id"]
    stack.wait_for(lambda: state(name, member)["Health"] == "healthy", timeout=60, what="healthy")
    ok(berthctl("exec", name, "touch", "/tmp/bad", user=member))
    st = stack.wait_for(lambda: (lambda s: s if s["Status"] == "stopped" else None)(state(name, member)),
                        timeout=60, what="stopped")
    rec = restart_record(cid)
    assert (st["ExitCode"], st["RestartCount"], st["Health"]) == (3, 0, "unhealthy"), st
    assert (rec["stopped_by_user"], rec["health_restart"], rec["count"]) == (True, False, 0), rec
