"""The supervisor's living-container API (PauseContainer, ResumeContainer, ContainerStats, OpenLogStreams,
restart policies), called as the broker would call it, on a private bus with the build's supervisor and
shim (test_supervisor_containers.py's Env): no installed stack needed.
"""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from berthtest import stack
from test_supervisor_containers import Env, create_ok

CLIENT = r'''
import json, os, sys
import dbus
bus = dbus.bus.BusConnection(os.environ["BUS"])
sup = dbus.Interface(bus.get_object("org.berth.Supervisor1", "/org/berth/Supervisor1"), "org.berth.Supervisor1")
a = json.loads(sys.argv[1])
op = a["op"]
T = 120
try:
    if op in ("pause", "resume"):
        getattr(sup, "PauseContainer" if op == "pause" else "ResumeContainer")(a["id"], dbus.UInt64(0), timeout=T)
        print(json.dumps({}))
    elif op == "kill":
        sup.KillContainer(a["id"], dbus.Int32(a["signal"]), dbus.UInt64(a.get("flags", 0)), timeout=T)
        print(json.dumps({}))
    elif op == "stats":
        out = {}
        for cid, vals in sup.ContainerStats(dbus.Array(a.get("ids", []), signature="s"), dbus.UInt64(0), timeout=T):
            out[str(cid)] = {str(k): int(v) for k, v in vals.items()}
        print(json.dumps(out))
    elif op == "logs":
        files, follow = sup.OpenLogStreams(a["id"], dbus.UInt64(a.get("flags", 0)), timeout=T)
        out = {"files": [], "follow": None}
        for f in files:
            fd = f.take()
            st = os.fstat(fd)
            with os.fdopen(fd, "rb") as h:
                out["files"].append({"ino": st.st_ino, "data": h.read().decode()})
        if follow:
            fd = follow[0].take()
            if a.get("release"):
                open(a["release"], "w").close()
            with os.fdopen(fd, "rb") as h:
                out["follow"] = h.read().decode()
        print(json.dumps(out))
    elif op == "list":
        print(json.dumps({str(c): {str(k): (str(v) if isinstance(v, dbus.String) else int(v)) for k, v in p.items()}
                          for c, p in sup.ListContainers(timeout=T)}))
except dbus.exceptions.DBusException as e:
    print(json.dumps({"error": e.get_dbus_name(), "message": e.get_dbus_message()}))
'''


def stack_popen(cmd):
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class LivingEnv(Env):
    def __init__(self):
        super().__init__()
        self.living = self.bus.dir / "living.py"
        self.living.write_text(CLIENT)
        self.living.chmod(0o644)

    def live(self, **args):
        p = stack.run(["env", f"BUS={self.bus.address}", "/usr/bin/python3", str(self.living), json.dumps(args)],
                      user="berth-broker", timeout=180)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    def live_popen(self, **args):
        return stack_popen(["runuser", "-u", "berth-broker", "--", "env", f"BUS={self.bus.address}", "/usr/bin/python3",
                            str(self.living), json.dumps(args)])

    def get(self, cid):
        return self.live(op="list").get(cid)


@pytest.fixture
def env():
    e = LivingEnv()
    e.start()
    yield e
    e.close()


def run_detached(env, cmd, **kw):
    cid = env.new_id()
    create_ok(env, cid, env.request(env.image(), cmd=cmd, detach=True, **kw))
    assert "error" not in env.call(op="start", id=cid)
    return cid


def test_pause_and_resume_freeze_the_cgroup(env):
    cid = run_detached(env, ["sh", "-c", "while true; do :; done"])
    assert "error" not in env.live(op="pause", id=cid)
    c = env.get(cid)
    assert c["Status"] == "paused"
    state = Path("/sys/fs/cgroup/freezer/berth") / cid / "freezer.state"
    events = next(iter(Path("/sys/fs/cgroup").glob(f"**/berth/{cid}/cgroup.events")), None)
    if state.exists():
        assert state.read_text().strip() == "FROZEN"
    else:
        assert "frozen 1" in events.read_text()
    # A frozen busy loop uses no CPU.
    a = env.live(op="stats", ids=[cid])[cid]["CpuUsageNSec"]
    time.sleep(0.2)
    assert env.live(op="stats", ids=[cid])[cid]["CpuUsageNSec"] == a
    assert env.live(op="pause", id=cid)["error"] == "org.berth.Error.InvalidArgs"
    assert "error" not in env.live(op="resume", id=cid)
    assert env.get(cid)["Status"] == "running"
    stack.wait_for(lambda: env.live(op="stats", ids=[cid])[cid]["CpuUsageNSec"] > a, what="CPU time again")
    # Killing a paused container works: signal, then thaw.
    assert "error" not in env.live(op="pause", id=cid)
    assert "error" not in env.live(op="kill", id=cid, signal=9, flags=1)
    assert env.call(op="wait", id=cid)["code"] == 137
    assert env.get(cid)["Status"] == "stopped"


def test_stats_reads_the_cgroup(env):
    cid = run_detached(env, ["sh", "-c", "sleep 1000 & sleep 1000 & while true; do :; done"], memory=64 << 20)
    s = stack.wait_for(lambda: (lambda x: x if x.get("Pids", 0) >= 3 else None)(env.live(op="stats", ids=[cid])[cid]),
                       what="three processes")
    assert s["MemoryLimit"] == 64 << 20 and 0 < s["MemoryUsage"] < 64 << 20
    assert s["CpuUsageNSec"] > 0 and s["Timestamp"] > 0
    assert cid in env.live(op="stats")  # every running container without ids
    env.call(op="kill", id=cid, signal=9, flags=1)
    env.call(op="wait", id=cid)
    assert cid not in env.live(op="stats", ids=[cid])


def test_open_log_streams_follow_has_no_gap_and_no_repeat(env):
    ready = env.out / "ready"
    cmd = ["sh", "-c", "i=0; while [ $i -lt 50 ]; do echo $i; i=$((i+1)); done; "
                       "while [ ! -e /host-go ]; do sleep 0.02; done; echo after; echo err >&2"]
    cid = run_detached(env, cmd, name="follow")
    stack.wait_for(lambda: "stdout F 49" in (env.runtime / "containers" / cid / "log").read_text(), what="output")
    # The client tells (a file in a directory it may write) once it holds the pipe; then the container goes on.
    client = env.live_popen(op="logs", id=cid, flags=1, release=str(ready))
    stack.wait_for(lambda: ready.exists() or client.poll() is not None, what="the follower")
    (env.runtime / "containers" / cid / "rootfs" / "host-go").touch()
    stdout, stderr = client.communicate(timeout=60)
    assert client.returncode == 0, stderr
    out = json.loads(stdout)
    files = "".join(f["data"] for f in out["files"])
    text = [l.split(" ", 3)[3] for l in files.splitlines()]
    follow = [l.split(" ", 3)[3] for l in out["follow"].splitlines()[1:]]
    assert text[:50] == [str(i) for i in range(50)]
    combined = text + follow
    # Everything exactly once: the files up to the header's size, then the pipe.
    assert sorted(combined) == sorted([str(i) for i in range(50)] + ["after", "err"]), (text, follow)
    assert follow == ["after", "err"] or follow == ["err", "after"]
    # A stopped container: files only.
    env.call(op="wait", id=cid)
    out = env.live(op="logs", id=cid, flags=1)
    assert out["follow"] is None and "after" in out["files"][-1]["data"]


def test_on_failure_restarts_exactly_n_times_and_persists(env):
    cid = run_detached(env, ["sh", "-c", "echo run; exit 4"], restart="on-failure:3")
    stack.wait_for(lambda: (lambda c: c["RestartCount"] == 3 and c["Status"] == "stopped")(env.get(cid)),
                   timeout=60, what="three restarts")
    time.sleep(1.5)  # the next delay would be 800 ms
    c = env.get(cid)
    assert (c["RestartCount"], c["Status"], c["ExitCode"]) == (3, "stopped", 4)
    assert (env.runtime / "containers" / cid / "log").read_text().count("stdout F run") == 4
    record = json.loads((env.runtime / "containers" / cid / "restart").read_text())
    assert record["count"] == 3 and record["policy"] == "on-failure:3"


def test_a_users_kill_is_not_a_failure(env):
    cid = run_detached(env, ["sleep", "1000"], restart="always")
    assert "error" not in env.live(op="kill", id=cid, signal=9, flags=1 | 2)
    assert env.call(op="wait", id=cid)["code"] == 137
    time.sleep(1)
    c = env.get(cid)
    assert (c["Status"], c["RestartCount"]) == ("stopped", 0)
    # Without the user flag (the container died on its own): restarted.
    cid2 = run_detached(env, ["sleep", "1000"], restart="always", name="dies")
    pid = env.get(cid2)["Pid"]
    os.kill(pid, signal.SIGKILL)
    stack.wait_for(lambda: (lambda c: c["Status"] == "running" and c["RestartCount"] == 1)(env.get(cid2)),
                   what="restarted")


def test_restart_after_a_supervisor_sigkill(env):
    cid = run_detached(env, ["sh", "-c", "echo up; exec sleep 1000"], restart="always")
    pid = env.get(cid)["Pid"]
    env.kill_supervisor()
    os.kill(pid, signal.SIGKILL)
    stack.wait_for(lambda: not stack.pid_alive(pid), what="init gone")
    env.start()
    stack.wait_for(lambda: (lambda c: c and c["Status"] == "running" and c["RestartCount"] == 1)(env.get(cid)),
                   timeout=60, what="restarted after the supervisor came back")
    stack.wait_for(lambda: (env.runtime / "containers" / cid / "log").read_text().count("stdout F up") == 2,
                   what="second run's output")


def test_a_due_restart_keeps_an_idle_supervisor(env):
    """Idle exit (idle-exit-sec) must wait for the restart policy: with a 1 s idle time and a back-off
    that reaches 1.6 s before the fifth restart, a supervisor that counted only running containers as
    work would leave with restarts still due. Watched through the restart record (a bus call would
    itself keep the supervisor awake); the supervisor goes once the policy has nothing left to do."""
    conf = env.base / "conf"
    conf.mkdir()
    (conf / "supervisor.conf").write_text("[supervisor]\nidle-exit-sec=1\n")
    env.kill_supervisor()
    env.start(extra_env={"BERTH_CONFIG_DIR": conf})
    cid = run_detached(env, ["sh", "-c", "echo run; exit 4"], restart="on-failure:5")
    record = env.runtime / "containers" / cid / "restart"
    stack.wait_for(lambda: json.loads(record.read_text())["count"] == 5, timeout=60, what="five restarts")
    stack.wait_for(lambda: (env.runtime / "containers" / cid / "log").read_text().count("stdout F run") == 6,
                   timeout=60, what="the sixth run's output")
    # Nothing is due any more: the idle time applies again.
    env.proc.wait(timeout=60)
