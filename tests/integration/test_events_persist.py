"""Events outlive the broker (docs/architecture/events.md): a container that dies while the broker is not
running still shows create, start and die to `events --since`, in order and once, to root and to its owner
and to no other member; and the broker's own events (tag) survive a broker crash.

The broker is killed with SIGKILL (as a crash) and comes back by bus activation on the next call. The
container ends when the test creates a file in its root (through /proc/PID/root), so its exit happens at
a moment the test chooses: after the broker is gone, before anything could start it again. Waits are
bounded only to fail a hung run; no result depends on timing.
"""
import json
import os
import re
import select
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from berthtest import stack
from berthtest.containers import imported_busybox, ok
from berthtest.services import NameWatch
from berthtest.stack import stop

IMAGE = "localhost/berth-events-persist:latest"
MEMBER2 = "berth-test-member2"
BROKER = stack.SERVICES["broker"]
RUNTIME = Path("/run/berth/containers")


def command(args, user):
    cmd = [str(stack.BERTHCTL), "--no-ask-password", *args]
    return ["runuser", "-u", user, "--"] + cmd if user else cmd


def berthctl(*args, user=None, timeout=120):
    return subprocess.run(command(args, user), capture_output=True, text=True, timeout=timeout)


def popen(*args, user=None):
    # Its own process group: killing runuser alone would leave berthctl subscribed.
    return subprocess.Popen(command(args, user), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def read_events(proc, until, timeout=60):
    """JSON events from a running `events --json` until until(event) holds. The timeout only keeps a
    missing event from hanging the run (it fails the test)."""
    got = []
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    buf = getattr(proc, "pending", b"")
    while True:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            e = json.loads(line)
            got.append(e)
            if until(e):
                proc.pending = buf
                return got
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
    stop(proc)
    raise AssertionError(f"events ended without the expected one: {got}\n{proc.stderr.read()}")


def since_now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))


def kill_broker():
    """SIGKILL the broker (a crash) and wait until its name is free: the next call activates a new one."""
    pid = stack.name_pid(BROKER)
    if pid:
        os.kill(pid, signal.SIGKILL)
        stack.wait_for(lambda: not stack.pid_alive(pid), timeout=30, what="the broker to die")
    stack.wait_for(lambda: stack.name_pid(BROKER) is None, timeout=30, what="the broker's name to be released")


@pytest.fixture(scope="module")
def image(tmp_path_factory, member):
    with imported_busybox(tmp_path_factory, IMAGE, cli=berthctl):
        stack.ensure_user(MEMBER2, groups=["berth"])
        yield IMAGE


def test_events_of_a_container_that_died_while_the_broker_was_away(image, member):
    tag = f"localhost/berth-evp-tag:{uuid.uuid4().hex[:8]}"
    name = f"evp-{uuid.uuid4().hex[:8]}"
    since = since_now()
    ok(berthctl("images", "tag", image, tag))
    # Ends with 7 once /go exists in its root.
    ok(berthctl("run", "-d", "--name", name, "--net", "none", image, "sh", "-c",
                "while [ ! -e /go ]; do sleep 0.05; done; exit 7", user=member))
    state = json.loads(ok(berthctl("inspect", name, user=member)).stdout)[0]["State"]
    cid, pid = state["Id"], state["Pid"]
    assert pid > 0, state

    with NameWatch([BROKER]) as watch:
        kill_broker()
        appeared_before = len(watch.appeared(BROKER))
        (Path(f"/proc/{pid}/root") / "go").write_text("")
        # The container ended (its shim wrote the exit record; the supervisor, which watches the shim,
        # learns it at once); nobody started a broker meanwhile.
        stack.wait_for(lambda: not stack.pid_alive(pid) and (RUNTIME / cid / "exit").exists(), timeout=60,
                       what="the container to exit")
        assert stack.name_pid(BROKER) is None
        assert len(watch.appeared(BROKER)) == appeared_before, watch.events

    # The first call starts a new broker, which reads the supervisor's journal before it replies.
    flt = ("--filter", f"container={name}")
    ev_root = popen("events", "--json", "--since", since, *flt)
    ev_owner = popen("events", "--json", "--since", since, *flt, user=member)
    ev_other = popen("events", "--json", "--since", since, user=MEMBER2)
    try:
        for ev in (ev_root, ev_owner):
            got = read_events(ev, lambda e: e["action"] == "die")
            assert [e["action"] for e in got] == ["create", "start", "die"], got
            assert got[2]["attributes"]["exitCode"] == "7" and got[2]["id"] == cid and got[2]["name"] == name
            assert all(e["attributes"]["image"] == image for e in got), got
            assert [e["time_usec"] for e in got] == sorted(e["time_usec"] for e in got)
        # Removing it: the next event of each stream is its destroy, so nothing came twice in between.
        ok(berthctl("rm", name, user=member))
        for ev in (ev_root, ev_owner):
            got = read_events(ev, lambda e: True)
            assert [e["action"] for e in got] == ["destroy"], got
        # Another member: its own container's events are the end of its stream, and nothing of ours in it.
        ok(berthctl("run", "--rm", "--name", f"{name}-m2", "--net", "none", image, "true", user=MEMBER2))
        got = read_events(ev_other, lambda e: e["name"] == f"{name}-m2" and e["action"] == "destroy")
        assert not [e for e in got if e["name"] == name or e["id"] == cid], got
        assert [e["action"] for e in got if e["name"] == f"{name}-m2"] == ["create", "start", "die", "destroy"]
    finally:
        stop(ev_root, ev_owner, ev_other)

    # A replay alone, after a second crash: the same history, once.
    kill_broker()
    replay = popen("events", "--json", "--since", since, *flt)
    try:
        got = read_events(replay, lambda e: e["action"] == "destroy")
    finally:
        stop(replay)
    assert [e["action"] for e in got] == ["create", "start", "die", "destroy"], got

    # The broker's own events survived both crashes: the tag from before, then a delete from now.
    images = popen("events", "--json", "--since", since, "--filter", "type=image")
    try:
        ok(berthctl("images", "rm", tag))
        got = read_events(images, lambda e: e["action"] == "delete" and e["name"] == tag)
    finally:
        stop(images)
    assert [(e["action"], e["name"]) for e in got if e["name"] == tag] == [("tag", tag), ("delete", tag)], got


@pytest.mark.parametrize("who", ["root", "member"])
def test_only_the_broker_reads_the_supervisors_event_journal(who, member):
    # Every user's container events are in it: refused by the bus policy or by the supervisor itself.
    p = stack.run(["gdbus", "call", "--system", "--dest", stack.SERVICES["supervisor"], "--object-path",
                   "/org/berth/Supervisor1", "--method", "org.berth.Supervisor1.ReadEvents", "''", "uint64 0", "uint64 0"],
                  user=None if who == "root" else member)
    assert p.returncode != 0, p.stdout
    assert re.search(r"GDBus\.Error:(org\.freedesktop\.DBus\.Error\.AccessDenied|org\.berth\.Error\.NotBroker):",
                     p.stderr), p.stderr


def test_restarts_and_health_while_the_broker_was_away(image, member):
    """A restart-policy restart and a health change that happen while the broker is gone are in the
    replay, in order and once."""
    rs, hc = f"evp-rs-{uuid.uuid4().hex[:8]}", f"evp-hc-{uuid.uuid4().hex[:8]}"
    since = since_now()
    # Exits 3 each time /go appears (and removes it): on-failure:1 restarts it once.
    ok(berthctl("run", "-d", "--name", rs, "--net", "none", "--restart", "on-failure:1", image, "sh", "-c",
                "while [ ! -e /go ]; do sleep 0.05; done; rm -f /go; exit 3", user=member))
    ok(berthctl("run", "-d", "--name", hc, "--net", "none", "--health-cmd", "test -e /ok", "--health-interval",
                "200ms", "--health-retries", "1", image, "sleep", "1000", user=member))
    ids = {n: json.loads(ok(berthctl("inspect", n, user=member)).stdout)[0]["State"]["Id"] for n in (rs, hc)}
    # The triggers are written into each container's root through its init's /proc/PID/root.
    hc_pid = json.loads(ok(berthctl("inspect", hc, user=member)).stdout)[0]["State"]["Pid"]

    first_pid = json.loads(ok(berthctl("inspect", rs, user=member)).stdout)[0]["State"]["Pid"]

    def restarted():
        """The pid of the restarted container's init: a live process in its cgroup, not the first one."""
        for d in Path("/proc").iterdir():
            if not d.name.isdigit() or int(d.name) == first_pid:
                continue
            try:
                if ids[rs] in (d / "cgroup").read_text() and (d / "comm").read_text().strip() == "sh":
                    return int(d.name)
            except OSError:
                continue
        return None

    try:
        with NameWatch([BROKER]) as watch:
            kill_broker()
            appeared_before = len(watch.appeared(BROKER))
            (Path(f"/proc/{first_pid}/root") / "go").write_text("")
            stack.wait_for(lambda: not stack.pid_alive(first_pid), timeout=60, what="the first exit")
            second = stack.wait_for(restarted, timeout=60, what="the restart")
            (Path(f"/proc/{second}/root") / "go").write_text("")
            stack.wait_for(lambda: not stack.pid_alive(second), timeout=60, what="the second exit")
            (Path(f"/proc/{hc_pid}/root") / "ok").write_text("")
            stack.wait_for(lambda: (RUNTIME / ids[hc] / "health-state").read_text().startswith("healthy"),
                           timeout=60, what="the container to be healthy")
            assert stack.name_pid(BROKER) is None
            assert len(watch.appeared(BROKER)) == appeared_before, watch.events

        ev = popen("events", "--json", "--since", since, "--filter", f"container={rs}", user=member)
        try:
            dies = []
            got = read_events(ev, lambda e: e["action"] == "die" and (dies.append(e) or len(dies) == 2))
        finally:
            stop(ev)
        assert [e["action"] for e in got] == ["create", "start", "die", "start", "die"], got
        assert all(d["attributes"]["exitCode"] == "3" for d in dies), got

        ev = popen("events", "--json", "--since", since, "--filter", f"container={hc}", user=member)
        try:
            got = read_events(ev, lambda e: e["action"] == "health_status" and
                              e["attributes"]["healthStatus"] == "healthy")
        finally:
            stop(ev)
        assert [e["action"] for e in got][:2] == ["create", "start"], got
        health = [e["attributes"]["healthStatus"] for e in got if e["action"] == "health_status"]
        assert health.count("healthy") == 1 and len(health) == len(set(health)), got
    finally:
        berthctl("rm", "-f", rs, user=member)
        berthctl("rm", "-f", hc, user=member)
