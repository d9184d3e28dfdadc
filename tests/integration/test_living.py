"""Living containers (issue 9, the logs / events / pause / stats / restart half): end to end through the
installed stack, as root and as a non-root member of group berth.

The image is Debian's busybox-static, built by tools/busybox-image and imported, as test_run.py does.
"""
import json
import os
import re
import signal
import subprocess
import time
from contextlib import nullcontext
from pathlib import Path

import pytest

from berthtest import stack
from berthtest.containers import imported_busybox, ok
from berthtest.stack import stop

# BERTH_LIVING_PRIVATE=1: against a stack of the build's broker and supervisor on the bus that
# DBUS_SYSTEM_BUS_ADDRESS names (no bus activation there: the tests that restart the supervisor skip),
# with BERTH_LIVING_RUNTIME, BERTH_LIVING_IMAGE (already there) and BERTH_LIVING_BERTHCTL; run with
# --noconftest. The suite itself uses the installed stack.
PRIVATE = os.environ.get("BERTH_LIVING_PRIVATE") == "1"
IMAGE = os.environ.get("BERTH_LIVING_IMAGE", "localhost/berth-living-test:latest")
MEMBER2 = "berth-test-member2"
RUNTIME = Path(os.environ.get("BERTH_LIVING_RUNTIME", "/run/berth/containers"))
BERTHCTL = os.environ.get("BERTH_LIVING_BERTHCTL", str(stack.BERTHCTL))
WHO = ["root", "member"]
needs_activation = pytest.mark.skipif(PRIVATE, reason="the private stack has no bus activation")


def command(args, user):
    cmd = [BERTHCTL, "--no-ask-password", *args]
    if user:
        bus = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
        cmd = ["runuser", "-u", user, "--"] + (["env", f"DBUS_SYSTEM_BUS_ADDRESS={bus}"] if bus else []) + cmd
    return cmd


def berthctl(*args, user=None, timeout=120):
    return subprocess.run(command(args, user), capture_output=True, text=True, timeout=timeout)


def popen(*args, user=None):
    # Its own process group: killing runuser alone would leave berthctl subscribed.
    return subprocess.Popen(command(args, user), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def inspect(name, user=None):
    return json.loads(ok(berthctl("inspect", name, user=user)).stdout)[0]


def state(name, user=None):
    return inspect(name, user)["State"]


def ls(user=None):
    return {c["Name"]: c for c in json.loads(ok(berthctl("ls", "-a", "--json", user=user)).stdout)}


@pytest.fixture(scope="module")
def member():
    stack.ensure_user(stack.MEMBER, groups=["berth"])
    return stack.MEMBER


@pytest.fixture(scope="module")
def image(tmp_path_factory, member):
    with nullcontext() if PRIVATE else imported_busybox(tmp_path_factory, IMAGE, cli=berthctl):
        stack.ensure_user(MEMBER2, groups=["berth"])
        yield IMAGE
        for name, c in ls().items():
            if c["Image"] == IMAGE:
                berthctl("rm", "-f", name)


@pytest.fixture
def names():
    made = []
    yield made
    for n in made:
        berthctl("rm", "-f", n)


def as_user(who, member):
    return member if who == "member" else None


# ---- logs -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", WHO)
def test_logs_keep_order_across_stdout_and_stderr(image, member, who, names):
    user = as_user(who, member)
    names.append(f"order-{who}")
    # Interleaved lines with sequence numbers; each write waits a moment so that the shim has read it
    # before the other stream's next one (two pipes carry no order of their own: the log's is the order
    # the shim reads them in).
    script = 'i=0; while [ $i -lt 40 ]; do echo "$i out"; usleep 20000; echo "$((i+1)) err" >&2; ' \
             'usleep 20000; i=$((i+2)); done'
    ok(berthctl("run", "-d", "--name", f"order-{who}", image, "sh", "-c", script, user=user))
    ok(berthctl("wait", f"order-{who}", user=user))
    p = ok(berthctl("logs", "-t", f"order-{who}", user=user))
    out = [l.split(" ", 1)[1] for l in p.stdout.splitlines()]
    err = [l.split(" ", 1)[1] for l in p.stderr.splitlines()]
    assert out == [f"{i} out" for i in range(0, 40, 2)]
    assert err == [f"{i} err" for i in range(1, 41, 2)]
    # The merged order, by the records' own times: strictly by sequence number.
    merged = sorted(p.stdout.splitlines() + p.stderr.splitlines())
    assert [int(l.split()[1]) for l in merged] == list(range(40))
    # The raw log alternates streams exactly.
    cid = inspect(f"order-{who}", user)["State"]["Id"]
    records = (RUNTIME / cid / "log").read_text().splitlines()
    assert [r.split(" ", 3)[3] for r in records] == [f"{i} {'out' if i % 2 == 0 else 'err'}" for i in range(40)]


@pytest.mark.parametrize("who", WHO)
def test_logs_follow_ends_when_the_container_exits(image, member, who, names):
    user = as_user(who, member)
    name = f"follow-{who}"
    names.append(name)
    ok(berthctl("run", "-d", "--name", name, image, "sh", "-c",
                'echo first; echo also >&2; while [ ! -e /stop ]; do usleep 50000; done; echo last; printf tail',
                user=user))
    f = popen("logs", "-f", name, user=user)
    assert f.stdout.readline() == "first\n"
    assert f.poll() is None  # still following
    cid = state(name, user)["Id"]
    (RUNTIME / cid / "rootfs" / "stop").touch()
    out, err = f.communicate(timeout=60)
    assert f.returncode == 0, err
    assert out == "last\ntail"
    assert err == "also\n"
    # Without -f, everything once.
    p = ok(berthctl("logs", name, user=user))
    assert p.stdout == "first\nlast\ntail" and p.stderr == "also\n"


@pytest.mark.parametrize("who", WHO)
def test_logs_tail_and_since(image, member, who, names):
    user = as_user(who, member)
    name = f"tail-{who}"
    names.append(name)
    ok(berthctl("run", "-d", "--name", name, image, "sh", "-c",
                'i=0; while [ $i -lt 10 ]; do echo "line $i"; i=$((i+1)); done', user=user))
    ok(berthctl("wait", name, user=user))
    assert ok(berthctl("logs", "--tail", "3", name, user=user)).stdout == "line 7\nline 8\nline 9\n"
    assert ok(berthctl("logs", "--tail", "0", name, user=user)).stdout == ""
    assert ok(berthctl("logs", "--tail", "100", name, user=user)).stdout.count("\n") == 10
    stamped = ok(berthctl("logs", "-t", name, user=user)).stdout.splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z line \d$", l) for l in stamped), stamped
    # --since the 6th record's own time: from that record on (records with the same time included).
    t5 = stamped[5].split()[0]
    since = ok(berthctl("logs", "--since", t5, name, user=user)).stdout.splitlines()
    assert since[-1] == "line 9" and "line 5" in since and len(since) <= 5 + stamped[:5].count(t5)
    assert ok(berthctl("logs", "--since", "1h", name, user=user)).stdout.count("\n") == 10
    assert ok(berthctl("logs", "--since", "2999-01-01T00:00:00Z", name, user=user)).stdout == ""
    p = berthctl("logs", "--since", "yesterday", name, user=user)
    assert p.returncode != 0 and "invalid --since" in p.stderr, p.stderr


@needs_activation
def test_logs_survive_a_supervisor_sigkill(image, member, names):
    names.append("survive")
    ok(berthctl("run", "-d", "--name", "survive", image, "sh", "-c",
                'i=0; while true; do echo "n $i"; i=$((i+1)); usleep 20000; done', user=member))
    stack.wait_for(lambda: "n 5\n" in berthctl("logs", "survive", user=member).stdout, what="output")
    sup = stack.name_pid("org.berth.Supervisor1")
    os.kill(sup, signal.SIGKILL)
    stack.wait_for(lambda: not stack.pid_alive(sup), what="supervisor gone")
    # The shim kept logging meanwhile; the next call brings the supervisor back.
    stack.wait_for(lambda: "n 40\n" in berthctl("logs", "survive", user=member).stdout, timeout=60,
                   what="output after the restart")
    seq = [int(l.split()[1]) for l in ok(berthctl("logs", "survive", user=member)).stdout.splitlines()]
    assert seq == list(range(len(seq))), "a gap or a repeat in the log"
    ok(berthctl("rm", "-f", "survive", user=member))


def test_log_rotation_keeps_disk_use_bounded(image, member, names):
    names.append("chatty")
    cap = 64 * 1024
    line = "x" * 100
    ok(berthctl("run", "-d", "--name", "chatty", "--log-max-size", "64k", image, "sh", "-c",
                f'i=0; while [ $i -lt 20000 ]; do echo "$i {line}"; i=$((i+1)); done', user=member))
    ok(berthctl("wait", "chatty", user=member, timeout=300))
    cid = state("chatty", member)["Id"]
    record_max = 16384 + 64
    log, log1 = RUNTIME / cid / "log", RUNTIME / cid / "log.1"
    assert log1.exists()
    assert log.stat().st_size < cap + record_max and log1.stat().st_size < cap + record_max
    assert not any(p.name.startswith("log.2") for p in (RUNTIME / cid).iterdir())
    # What is kept is the newest output, contiguous, ending with the last line.
    seq = [int(l.split()[0]) for l in ok(berthctl("logs", "chatty", user=member)).stdout.splitlines()]
    assert seq[-1] == 19999 and seq == list(range(seq[0], 20000))
    assert seq[0] > 0


# ---- events ---------------------------------------------------------------------------------------

def read_events(proc, until, timeout=60):
    """JSON events from a running `events --json` until until(event) holds."""
    got = []
    deadline = time.monotonic() + timeout
    os.set_blocking(proc.stdout.fileno(), True)
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        e = json.loads(line)
        got.append(e)
        if until(e):
            return got
    raise AssertionError(f"events ended without the expected one: {got}\n{proc.stderr.read() if proc.poll() is not None else ''}")


@pytest.mark.parametrize("who", WHO)
def test_events_in_order_for_a_failing_run_with_rm(image, member, who):
    user = as_user(who, member)
    name = f"ev-{who}"
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    # --since replays what happened between the subscription and the events process starting.
    ev = popen("events", "--json", "--since", since, "--filter", f"container={name}", user=user)
    try:
        assert berthctl("run", "--rm", "--name", name, image, "sh", "-c", "exit 3", user=user).returncode == 3
        got = read_events(ev, lambda e: e["action"] == "destroy")
    finally:
        stop(ev)
    assert [e["action"] for e in got] == ["create", "start", "die", "destroy"], got
    die = got[2]
    assert die["attributes"]["exitCode"] == "3" and die["type"] == "container" and die["name"] == name
    assert [e["time_usec"] for e in got] == sorted(e["time_usec"] for e in got)


@pytest.mark.parametrize("who", WHO)
def test_exec_and_health_status_events(image, member, who, names):
    user = as_user(who, member)
    name = f"evx-{who}"
    names.append(name)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    ev = popen("events", "--json", "--since", since, "--filter", f"container={name}", user=user)
    try:
        ok(berthctl("run", "-d", "--name", name, "--net", "none", "--health-cmd", "true", "--health-interval",
                    "200ms", image, "sleep", "1000", user=user))
        got = read_events(ev, lambda e: e["action"] == "health_status" and
                          e["attributes"]["healthStatus"] == "healthy")
        assert all(e["attributes"]["healthStatus"] in ("starting", "healthy")
                   for e in got if e["action"] == "health_status"), got
        assert berthctl("exec", name, "sh", "-c", "exit 4", user=user).returncode == 4
        got = read_events(ev, lambda e: e["action"] == "exec")
        assert got[-1]["name"] == name and got[-1]["attributes"]["image"] == image, got
    finally:
        stop(ev)


def test_a_member_sees_none_of_another_members_events(image, member):
    def destroyed(name):
        return lambda e: e["name"] == name and e["action"] == "destroy"

    ev_b = popen("events", "--json", user=MEMBER2)
    ev_root = popen("events", "--json")
    try:
        # B's first container's events show that both subscriptions are live.
        ok(berthctl("run", "--rm", "--name", "ev-b1", image, "true", user=MEMBER2))
        read_events(ev_b, destroyed("ev-b1"))
        read_events(ev_root, destroyed("ev-b1"))
        ok(berthctl("run", "--rm", "--name", "ev-a", image, "true", user=member))
        ok(berthctl("run", "--rm", "--name", "ev-b2", image, "true", user=MEMBER2))
        got_b = read_events(ev_b, destroyed("ev-b2"))
        got_root = read_events(ev_root, destroyed("ev-b2"))
    finally:
        stop(ev_b, ev_root)
    assert all(e["name"] != "ev-a" for e in got_b), got_b
    assert [e["action"] for e in got_b if e["name"] == "ev-b2"] == ["create", "start", "die", "destroy"]
    assert [e["action"] for e in got_root if e["name"] == "ev-a"] == ["create", "start", "die", "destroy"]
    # The replay of the ring holds the same limits.
    replay = popen("events", "--json", "--since", "10m", user=MEMBER2)
    try:
        got = read_events(replay, destroyed("ev-b2"))
    finally:
        stop(replay)
    assert all(e["name"] != "ev-a" for e in got), got


@pytest.mark.skipif(PRIVATE, reason="the private stack has one hand-written image record")
def test_image_events(image, member):
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    ev = popen("events", "--json", "--since", since, "--filter", "type=image", user=member)
    try:
        ok(berthctl("images", "tag", IMAGE, "localhost/berth-living-tag:1"))
        ok(berthctl("images", "rm", "localhost/berth-living-tag:1"))
        got = read_events(ev, lambda e: e["action"] == "delete")
    finally:
        stop(ev)
    assert [(e["action"], e["name"]) for e in got][-2:] == [("tag", "localhost/berth-living-tag:1"),
                                                            ("delete", "localhost/berth-living-tag:1")]


# ---- pause ----------------------------------------------------------------------------------------

def freezer_state(cid):
    for path in (Path("/sys/fs/cgroup/freezer/berth") / cid / "freezer.state",):
        if path.exists():
            return path.read_text().strip()
    for path in (Path("/sys/fs/cgroup/berth") / cid / "cgroup.events",
                 Path("/sys/fs/cgroup/unified/berth") / cid / "cgroup.events"):
        if path.exists():
            return "FROZEN" if "frozen 1" in path.read_text() else "THAWED"
    return None


def last_count(name, user):
    out = berthctl("logs", name, user=user).stdout.split()
    return int(out[-1]) if out else -1


@pytest.mark.parametrize("who", WHO)
def test_pause_freezes_and_unpause_resumes(image, member, who, names):
    user = as_user(who, member)
    name = f"pz-{who}"
    names.append(name)
    ok(berthctl("run", "-d", "--name", name, image, "sh", "-c",
                'i=0; while true; do i=$((i+1)); echo $i; usleep 20000; done', user=user))
    stack.wait_for(lambda: last_count(name, user) > 2, what="the counter")
    ok(berthctl("pause", name, user=user))
    st = state(name, user)
    assert st["Status"] == "paused" and ls(user)[name]["Status"] == "paused"
    assert freezer_state(st["Id"]) == "FROZEN"
    # Every process of the container is frozen: its init does not run.
    proc_state = Path(f"/proc/{st['Pid']}/status").read_text()
    assert re.search(r"^State:\s+[DS]", proc_state, re.M), proc_state
    # What the container wrote just before it froze may still be on its way through the shim.
    stack.wait_for(lambda: (lambda a: (time.sleep(0.2), a == last_count(name, user))[1])(last_count(name, user)),
                   what="the log to settle")
    frozen_at = last_count(name, user)
    time.sleep(0.3)
    assert last_count(name, user) == frozen_at
    assert berthctl("pause", name, user=user).returncode != 0  # paused already
    ok(berthctl("unpause", name, user=user))
    assert state(name, user)["Status"] == "running"
    stack.wait_for(lambda: last_count(name, user) > frozen_at, what="the counter advancing again")
    # kill and stop of a paused container work (signal, then thaw).
    ok(berthctl("pause", name, user=user))
    ok(berthctl("stop", "-t", "1", name, user=user))
    st = state(name, user)
    assert st["Status"] == "stopped"


def test_others_cannot_pause_a_members_container(image, member, names):
    names.append("pz-own")
    ok(berthctl("run", "-d", "--name", "pz-own", image, "sleep", "1000", user=member))
    p = berthctl("pause", "pz-own", user=MEMBER2)
    assert p.returncode != 0 and "org.berth.container-manage-any" in p.stderr, p.stderr
    assert state("pz-own", member)["Status"] == "running"


# ---- stats ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", WHO)
def test_stats_numbers_are_plausible(image, member, who, names):
    user = as_user(who, member)
    name = f"st-{who}"
    names.append(name)
    ok(berthctl("run", "-d", "--name", name, "--memory", "64m", image, "sh", "-c",
                "sleep 1000 & sleep 1000 & while true; do :; done", user=user))
    stack.wait_for(lambda: state(name, user)["Status"] == "running", what="running")
    rows = json.loads(ok(berthctl("stats", "--no-stream", "--json", name, user=user)).stdout)
    assert len(rows) == 1
    r = rows[0]
    assert r["Name"] == name and r["MemoryLimit"] == 64 * 1024 * 1024
    assert 0 < r["MemoryUsage"] < 64 * 1024 * 1024
    assert r["Pids"] >= 3
    assert r["CpuPercent"] is not None and r["CpuPercent"] > 0  # a busy loop
    assert r["CpuUsageNSec"] > 0
    # Without names: the caller's own running containers only.
    mine = {x["Name"] for x in json.loads(ok(berthctl("stats", "--no-stream", "--json", user=user)).stdout)}
    assert name in mine
    if who == "member":
        assert berthctl("stats", "--no-stream", name, user=MEMBER2).returncode != 0
        theirs = {x["Name"] for x in json.loads(ok(berthctl("stats", "--no-stream", "--json", user=MEMBER2)).stdout)}
        assert name not in theirs


# ---- restart policies -----------------------------------------------------------------------------

@pytest.mark.parametrize("who", WHO)
def test_on_failure_3_restarts_exactly_three_times(image, member, who, names):
    user = as_user(who, member)
    name = f"rs-{who}"
    names.append(name)
    ok(berthctl("run", "-d", "--name", name, "--restart", "on-failure:3", image, "sh", "-c", "echo run; exit 4",
                user=user))
    stack.wait_for(lambda: (lambda s: s["RestartCount"] == 3 and s["Status"] == "stopped")(state(name, user)),
                   timeout=60, what="three restarts")
    # The next back-off would be 800 ms: well past it, still three, stopped, with its exit code.
    time.sleep(2)
    st = state(name, user)
    assert (st["RestartCount"], st["Status"], st["ExitCode"]) == (3, "stopped", 4)
    assert ok(berthctl("logs", name, user=user)).stdout == "run\n" * 4
    assert ls(user)[name]["RestartCount"] == 3


def test_stop_is_not_a_failure(image, member, names):
    names.extend(["rs-stop", "rs-kill"])
    ok(berthctl("run", "-d", "--name", "rs-stop", "--restart", "on-failure", image, "sleep", "1000", user=member))
    ok(berthctl("run", "-d", "--name", "rs-kill", "--restart", "always", image, "sleep", "1000", user=member))
    ok(berthctl("stop", "-t", "0", "rs-stop", user=member))  # 137: non-zero
    ok(berthctl("kill", "rs-kill", user=member))
    berthctl("wait", "rs-kill", user=member)
    time.sleep(1.5)  # past the first back-off delays
    for n in ("rs-stop", "rs-kill"):
        st = state(n, member)
        assert (st["Status"], st["RestartCount"]) == ("stopped", 0), (n, st)
    assert state("rs-stop", member)["ExitCode"] == 137


@needs_activation
def test_always_restarts_after_the_supervisor_was_killed(image, member, names):
    names.append("rs-always")
    ok(berthctl("run", "-d", "--name", "rs-always", "--restart", "always", image, "sh", "-c",
                "echo up; exec sleep 1000", user=member))
    pid = state("rs-always", member)["Pid"]
    sup = stack.name_pid("org.berth.Supervisor1")
    os.kill(sup, signal.SIGKILL)
    stack.wait_for(lambda: not stack.pid_alive(sup), what="supervisor gone")
    # It dies while the supervisor is away (not a user's stop): the supervisor restarts it when it is back.
    os.kill(pid, signal.SIGKILL)
    stack.wait_for(lambda: not stack.pid_alive(pid), what="init gone")
    # ls asks the supervisor (which brings it back by bus activation); inspect shows the broker's mirror.
    stack.wait_for(lambda: (lambda c: c["Status"] == "running" and c["RestartCount"] == 1)(ls(member)["rs-always"]),
                   timeout=60, what="restarted")
    assert ls(member)["rs-always"]["Pid"] != pid
    assert ok(berthctl("logs", "rs-always", user=member)).stdout == "up\nup\n"


def test_restart_policy_is_refused_with_rm(image, member):
    p = berthctl("run", "--rm", "--restart", "always", image, "true", user=member)
    assert p.returncode == 125 and "restart" in p.stderr
    p = berthctl("run", "-d", "--restart", "sometimes", image, "true", user=member)
    assert p.returncode == 125 and "restart" in p.stderr
