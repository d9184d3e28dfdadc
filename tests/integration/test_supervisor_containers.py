"""The supervisor's container API (CreateContainer … OpenLog), called as the broker would call it.

The supervisor (from the build directory) runs as root on a private bus (only its own checks stand between callers and methods)
with its own state and runtime directories; the image is written by the test the way the fetcher and
the unpacker commit one (config blob in content/blobs/sha256, one snapshot per layer with its record),
from Debian's busybox-static.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from berthtest import stack
from berthtest.privatebus import PrivateBus

PRIVILEGED = "org.berth.container-privileged"

CLIENT = r'''
import json, os, sys
import dbus
bus = dbus.bus.BusConnection(os.environ["BUS"])
obj = bus.get_object("org.berth.Supervisor1", "/org/berth/Supervisor1")
sup = dbus.Interface(obj, "org.berth.Supervisor1")
args = json.loads(sys.argv[1])
op = args["op"]
T = 120
try:
    if op == "create":
        fds = {}
        for k, path in args.get("fds", {}).items():
            flags = os.O_PATH if k.startswith("mount") else (os.O_RDONLY if k == "stdin" else os.O_WRONLY | os.O_APPEND)
            fds[k] = dbus.types.UnixFd(os.open(path, flags))
        caller = args.get("caller") or bus.get_unique_name()
        pty = sup.CreateContainer(args["id"], json.dumps(args["request"]), dbus.Dictionary(fds, signature="sh"),
                                  caller, dbus.UInt64(0), timeout=T)
        out = {"pty": len(pty)}
        if args.get("run_pty"):
            fd = pty[0].take()
            sup.StartContainer(args["id"], dbus.UInt64(0), timeout=T)
            data = b""
            while True:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                data += chunk
            out["pty_output"] = data.decode(errors="replace")
        print(json.dumps(out))
    elif op == "start":
        sup.StartContainer(args["id"], dbus.UInt64(0), timeout=T)
        print(json.dumps({}))
    elif op == "kill":
        sup.KillContainer(args["id"], dbus.Int32(args["signal"]), dbus.UInt64(args.get("flags", 0)), timeout=T)
        print(json.dumps({}))
    elif op == "delete":
        sup.DeleteContainer(args["id"], dbus.UInt64(args.get("flags", 0)), timeout=T)
        print(json.dumps({}))
    elif op == "wait":
        code, reason = sup.WaitContainer(args["id"], dbus.UInt64(0), timeout=T)
        print(json.dumps({"code": int(code), "reason": str(reason)}))
    elif op == "list":
        out = {}
        for cid, props in sup.ListContainers(timeout=T):
            out[str(cid)] = {str(k): (str(v) if isinstance(v, dbus.String) else int(v)) for k, v in props.items()}
        print(json.dumps(out))
    elif op == "log":
        fd = sup.OpenLog(args["id"], dbus.UInt64(0), timeout=T).take()
        with os.fdopen(fd, "rb") as f:
            print(json.dumps({"log": f.read().decode(errors="replace")}))
except dbus.exceptions.DBusException as e:
    print(json.dumps({"error": e.get_dbus_name(), "message": e.get_dbus_message()}))
'''


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Env:
    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="berth-sup-"))
        self.base.chmod(0o755)
        self.state = self.base / "state"
        self.runtime = self.base / "run"
        self.blobs = self.state / "content" / "blobs" / "sha256"
        self.snaps = self.state / "snapshots"
        self.blobs.mkdir(parents=True)
        self.snaps.mkdir(mode=0o700)
        self.runtime.mkdir()
        self.out = self.base / "out"
        self.out.mkdir()
        self.out.chmod(0o777)
        self.bus = PrivateBus()
        self.client = self.bus.dir / "client.py"
        self.client.write_text(CLIENT)
        self.client.chmod(0o644)
        self.proc = None
        self.n = 0

    def start(self, extra_env=None):
        # The build under test (the same one tools/dev-up installs), so that this private-bus suite needs
        # no installed stack.
        self.proc = self.bus.start("supervisor", binary=stack.BUILD / "services" / "supervisor" / "berth-supervisor",
                                   env={"BERTH_STATE_DIR": self.state, "BERTH_RUNTIME_DIR": self.runtime,
                                        "BERTH_SHIM_PATH": stack.BUILD / "services" / "shim" / "berth-shim",
                                        **(extra_env or {})})

    def kill_supervisor(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.bus.procs.remove(self.proc)
        # Its name must be free before a new one can take it.
        stack.wait_for(lambda: stack.busctl("status", "org.berth.Supervisor1", address=self.bus.address).returncode != 0,
                       what="supervisor name released")

    def call(self, user="berth-broker", **args):
        p = stack.run(["env", f"BUS={self.bus.address}", "/usr/bin/python3", str(self.client), json.dumps(args)],
                      user=user, timeout=180)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    def new_id(self):
        self.n += 1
        return hashlib.md5(f"{self.base}{self.n}".encode()).hexdigest()

    def image(self, arch=None, tamper=False, skip_snapshot=False, passwd=None):
        """One layer: busybox-static with sh/cat/sleep/… links, /etc/passwd and /etc/group."""
        diff = sha256(f"layer-{self.base}-{arch}-{passwd}".encode())
        hexid = diff.split(":")[1]
        if not skip_snapshot:
            fs = self.snaps / hexid / "fs"
            if not fs.exists():
                (fs / "bin").mkdir(parents=True)
                shutil.copy("/bin/busybox", fs / "bin" / "busybox")
                for tool in ("sh", "cat", "sleep", "echo", "id", "ls", "true", "false", "kill", "hostname", "env", "head", "tr"):
                    (fs / "bin" / tool).symlink_to("busybox")
                (fs / "etc").mkdir()
                (fs / "etc" / "passwd").write_text(passwd or "root:x:0:0:root:/root:/bin/sh\n"
                                                   "alice:x:1000:1000::/home/alice:/bin/sh\n")
                (fs / "etc" / "group").write_text("root:x:0:\nsecret:x:50:alice\nalice:x:1000:\n")
                (fs / "notexec").write_text("#!/bin/sh\n")
                (self.snaps / hexid / "snapshot.json").write_text(json.dumps({"chain_id": diff, "parent": ""}))
        config = {
            "architecture": arch or {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine),
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff]},
        }
        data = json.dumps(config).encode()
        digest = sha256(data)
        (self.blobs / digest.split(":")[1]).write_bytes(data + (b" " if tamper else b""))
        return digest

    def request(self, digest, **kw):
        r = {"name": kw.pop("name", f"c{self.n}"), "owner": 0, "image_config": digest}
        # This suite is about the container lifecycle on a private bus: no CNI network (the default
        # bridge touches the host's /etc/berth/net.d, links and iptables; test_network.py covers it).
        r["net"] = "none"
        r.update(kw)
        return r

    def leftovers(self, cid):
        """Everything a container may leave behind."""
        found = []
        if (self.runtime / "containers" / cid).exists():
            found.append("state dir")
        if (self.snaps / "active" / cid).exists():
            found.append("active snapshot")
        if cid in Path("/proc/self/mountinfo").read_text():
            found.append("mount")
        for cg in Path("/sys/fs/cgroup").glob(f"**/berth/{cid}"):
            found.append(str(cg))
        return found

    def close(self):
        for p in self.bus.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            print("supervisor log:", p.stderr.read()[-4000:])
        self.bus.close()
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            target = line.split()[4]
            if target.startswith(str(self.base)):
                subprocess.run(["umount", "-l", target], check=False)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def env():
    e = Env()
    e.start()
    yield e
    e.close()


def status_field(pid, name):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(name)


def engine_missing(res):
    return "no container engine" in res.get("message", "")


def create_ok(env, cid, req, **kw):
    res = env.call(op="create", id=cid, request=req, **kw)
    if engine_missing(res):
        pytest.skip("this build has no container engine yet (branch engine not merged)")
    assert "error" not in res, res
    return res


# ---- refusals --------------------------------------------------------------------------------------

def test_stranger_and_member_calling_the_supervisor_directly_are_refused(env, member):
    digest = env.image()
    for user in ("nobody", member):
        for args in ({"op": "list"}, {"op": "create", "id": env.new_id(), "request": env.request(digest)}):
            res = env.call(user=user, **args)
            assert res.get("error") == "org.berth.Error.NotBroker", res


@pytest.mark.parametrize("option", [{"net": "host"}, {"privileged": True}, {"cap_add": ["NET_ADMIN"]},
                                    {"seccomp": "unconfined"}, {"mounts": [{"source_fd": 0, "destination": "/d"}]}])
def test_privileged_option_without_the_action_is_refused_naming_it(env, option):
    # No polkitd on this bus: nobody holds the action, so the check must deny (never allow).
    cid = env.new_id()
    fds = {"mount0": str(env.out)} if "mounts" in option else {}
    res = env.call(op="create", id=cid, request=env.request(env.image(), **option), fds=fds)
    assert res.get("error") == "org.berth.Error.NotAllowed", res
    assert PRIVILEGED in res["message"]
    assert env.leftovers(cid) == []


@pytest.mark.parametrize("request_json,id_ok", [
    ({"name": "x", "owner": 0}, True),                                   # no image_config
    ({"name": "x", "owner": 0, "image_config": "sha256:00", "bogus": 1}, True),
    ({"name": "../x", "owner": 0, "image_config": "sha256:" + "0" * 64}, True),
    ({"name": "x", "owner": 0, "image_config": "sha256:" + "0" * 64, "env": ["A=\n"]}, True),
    ({"name": "x", "owner": 0, "image_config": "sha256:" + "0" * 64}, False),
])
def test_invalid_requests_are_refused(env, request_json, id_ok):
    cid = env.new_id() if id_ok else "../../etc"
    res = env.call(op="create", id=cid, request=request_json)
    assert res.get("error") == "org.berth.Error.InvalidArgs", res


def test_caller_name_must_be_a_unique_bus_name(env):
    res = env.call(op="create", id=env.new_id(), request=env.request(env.image()), caller="org.berth.Broker1")
    assert res.get("error") == "org.berth.Error.InvalidArgs", res


def test_image_config_is_rehashed(env):
    cid = env.new_id()
    res = env.call(op="create", id=cid, request=env.request(env.image(tamper=True)))
    assert res.get("error") == "org.berth.Error.BadContent", res
    assert "digest" in res["message"]
    assert env.leftovers(cid) == []


def test_image_for_another_platform_is_not_runnable(env):
    cid = env.new_id()
    res = env.call(op="create", id=cid, request=env.request(env.image(arch="s390x")))
    assert res.get("error") == "org.berth.Error.ImageNotRunnable", res
    assert env.leftovers(cid) == []


def test_missing_snapshot_or_config_is_not_found(env):
    for digest in (env.image(skip_snapshot=True), "sha256:" + "1" * 64):
        cid = env.new_id()
        res = env.call(op="create", id=cid, request=env.request(digest))
        assert res.get("error") == "org.berth.Error.NotFound", res
        assert env.leftovers(cid) == []


@pytest.mark.parametrize("user", ["nobody_here", "4294967295", "alice:nogroup"])
def test_bad_user_fails_after_the_rootfs_was_mounted_and_leaves_nothing(env, user):
    cid = env.new_id()
    res = env.call(op="create", id=cid, request=env.request(env.image(), user=user))
    assert res.get("error") == "org.berth.Error.InvalidArgs", res
    assert env.leftovers(cid) == []


@pytest.mark.parametrize("target", ["/../../../../etc/passwd", "../../../../../../etc/group", "/proc/self/root/etc/passwd"])
def test_symlinked_passwd_pointing_outside_is_read_inside(env, target):
    # The image's /etc/passwd links to the host's (which knows berth-broker): resolved in the rootfs it is
    # itself (a loop), the image's own group file, or a /proc the image does not have.
    digest = env.image(passwd="placeholder")
    layer = next(p for p in env.snaps.iterdir() if (p / "fs" / "etc" / "passwd").exists()
                 and (p / "fs" / "etc" / "passwd").read_text() == "placeholder")
    (layer / "fs" / "etc" / "passwd").unlink()
    (layer / "fs" / "etc" / "passwd").symlink_to(target)
    cid = env.new_id()
    res = env.call(op="create", id=cid, request=env.request(digest, user="berth-broker"))
    assert res.get("error") == "org.berth.Error.InvalidArgs", res
    assert env.leftovers(cid) == []


# ---- restart: leftovers of a killed create are cleaned --------------------------------------------

def test_leftovers_of_a_create_killed_midway_are_cleaned_at_start(env):
    """What a supervisor killed inside CreateContainer leaves: a state dir whose record never
    completed, a mounted rootfs (host namespace), an active snapshot, maybe a cgroup."""
    digest = env.image()
    layer = next(p for p in env.snaps.iterdir() if len(p.name) == 64)
    cid = env.new_id()
    state = env.runtime / "containers" / cid
    (state / "rootfs").mkdir(parents=True)
    (state / "state").write_text(json.dumps({"id": cid, "name": "half", "owner": 0, "image_config": digest,
                                             "complete": False}))
    active = env.snaps / "active" / cid
    (active / "fs").mkdir(parents=True)
    (active / "work").mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={layer}/fs,upperdir={active}/fs,workdir={active}/work", str(state / "rootfs")],
                   check=True)
    orphan = env.new_id()   # an active snapshot whose state dir was never made
    (env.snaps / "active" / orphan / "fs").mkdir(parents=True)
    assert env.leftovers(cid) != []

    env.kill_supervisor()
    env.start()
    assert env.leftovers(cid) == []
    assert env.leftovers(orphan) == []
    assert env.call(op="list") == {}


# ---- the lifecycle (needs the engine) ---------------------------------------------------------------

def test_create_start_wait_delete_with_stdio_fds(env):
    cid = env.new_id()
    out = env.out / f"{cid}.out"
    out.touch()
    out.chmod(0o666)
    req = env.request(env.image(), cmd=["sh", "-c", "echo hello; echo oops >&2; exit 3"])
    create_ok(env, cid, req, fds={"stdout": str(out), "stderr": str(out)})
    lst = env.call(op="list")
    assert lst[cid]["Status"] == "created" and lst[cid]["Pid"] > 0
    assert env.call(op="start", id=cid) == {}
    assert env.call(op="wait", id=cid) == {"code": 3, "reason": "exited"}
    assert out.read_text() == "hello\noops\n"
    lst = env.call(op="list")
    assert lst[cid]["Status"] == "stopped" and lst[cid]["ExitCode"] == 3
    assert lst[cid]["FinishedAt"] >= lst[cid]["StartedAt"] >= lst[cid]["CreatedAt"] > 0
    assert env.call(op="delete", id=cid) == {}
    assert env.leftovers(cid) == []


@pytest.mark.parametrize("cmd,code,reason", [
    (["true"], 0, "exited"),
    (["false"], 1, "exited"),
    (["/nonexistent"], 127, "exec-failed"),
    (["/notexec"], 126, "exec-failed"),
])
def test_exit_statuses(env, cmd, code, reason):
    cid = env.new_id()
    create_ok(env, cid, env.request(env.image(), cmd=cmd))
    res = env.call(op="start", id=cid)
    if reason == "exec-failed":
        assert res.get("error") == "org.berth.Error.ExecFailed", res
    assert env.call(op="wait", id=cid) == {"code": code, "reason": reason}
    assert env.call(op="delete", id=cid) == {}
    assert env.leftovers(cid) == []


def test_detached_log_and_kill(env):
    cid = env.new_id()
    # The container's init gets SIGTERM only with a handler (pid namespace rule): sh traps it.
    req = env.request(env.image(), detach=True,
                      cmd=["sh", "-c", "trap 'exit 7' TERM; echo started; echo warn >&2; sleep 1000 & wait"])
    create_ok(env, cid, req)
    env.call(op="start", id=cid)
    stack.wait_for(lambda: "stderr F warn" in env.call(op="log", id=cid)["log"], what="log lines")
    log = env.call(op="log", id=cid)["log"]
    assert " stdout F started\n" in log
    # The shim (the init's parent) keeps to its memory goal: under 512 KiB resident.
    init = env.call(op="list")[cid]["Pid"]
    shim = int(status_field(init, "PPid"))
    assert Path(f"/proc/{shim}/comm").read_text().strip() == "berth-shim"
    assert int(status_field(shim, "VmRSS").split()[0]) < 512
    res = env.call(op="delete", id=cid)
    assert res.get("error") == "org.berth.Error.Busy", res
    assert env.call(op="kill", id=cid, signal=15, flags=1) == {}
    assert env.call(op="wait", id=cid) == {"code": 7, "reason": "exited"}
    assert env.call(op="delete", id=cid) == {}
    assert env.leftovers(cid) == []


def test_pty(env):
    cid = env.new_id()
    req = env.request(env.image(), tty=True, cmd=["sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo on-a-tty"])
    res = create_ok(env, cid, req, run_pty=True)
    assert res["pty"] == 1
    assert "on-a-tty" in res["pty_output"]
    assert env.call(op="wait", id=cid)["code"] == 0
    assert env.call(op="delete", id=cid) == {}


def test_force_delete_of_a_running_container(env):
    cid = env.new_id()
    create_ok(env, cid, env.request(env.image(), detach=True, cmd=["sleep", "1000"]))
    env.call(op="start", id=cid)
    assert env.call(op="delete", id=cid, flags=1) == {}
    assert env.leftovers(cid) == []
    assert cid not in env.call(op="list")


def test_supervisor_killed_while_containers_run(env):
    running, finishing = env.new_id(), env.new_id()
    create_ok(env, running, env.request(env.image(), name="keeps", detach=True,
                                        cmd=["sh", "-c", "echo before; exec sleep 1000"]))
    env.call(op="start", id=running)
    create_ok(env, finishing, env.request(env.image(), name="ends", detach=True, cmd=["sh", "-c", "read x; exit 5"]))
    pid = env.call(op="list")[running]["Pid"]

    env.kill_supervisor()
    # While it is away: the container keeps running, the other one starts and ends (stdin is /dev/null).
    assert stack.pid_alive(pid)
    env.start()
    lst = env.call(op="list")
    assert lst[running]["Status"] == "running" and lst[running]["Pid"] == pid
    assert lst[finishing]["Status"] == "created"
    env.call(op="start", id=finishing)
    assert env.call(op="wait", id=finishing) == {"code": 5, "reason": "exited"}
    assert "stdout F before" in env.call(op="log", id=running)["log"]

    env.kill_supervisor()
    env.start()
    assert env.call(op="list")[finishing]["ExitCode"] == 5
    assert env.call(op="kill", id=running, signal=9) == {}
    assert env.call(op="wait", id=running) == {"code": 137, "reason": "signal"}
    for cid in (running, finishing):
        assert env.call(op="delete", id=cid) == {}
        assert env.leftovers(cid) == []


def run_to_file(env, cid, req):
    out = env.out / f"{cid}.out"
    out.touch()
    out.chmod(0o666)
    create_ok(env, cid, req, fds={"stdout": str(out), "stderr": str(out)})
    env.call(op="start", id=cid)
    res = env.call(op="wait", id=cid)
    env.call(op="delete", id=cid)
    return res, out.read_text()


def test_confinement_defaults_inside(env):
    res, status = run_to_file(env, env.new_id(), env.request(env.image(), cmd=["cat", "/proc/self/status"]))
    assert res == {"code": 0, "reason": "exited"}
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    # podman's 11 capabilities: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    # NET_BIND_SERVICE SYS_CHROOT SETFCAP; nothing inheritable or ambient (S9).
    assert fields["CapEff"].strip() == "00000000800405fb"
    assert fields["CapBnd"].strip() == "00000000800405fb"
    assert fields["CapInh"].strip() == "0000000000000000"
    assert fields["CapAmb"].strip() == "0000000000000000"
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2"
    # No signal blocked or ignored from the supervisor's event loop.
    assert int(fields["SigBlk"], 16) == 0 and int(fields["SigIgn"], 16) == 0


@pytest.mark.parametrize("user,want", [("alice", "1000 50"), ("1000", "1000 50"), ("1000:1000", "1000 50"),
                                       ("", "0")])
def test_supplementary_groups_from_the_image(env, user, want):
    # S8 (CVE-2023-25173): the image's /etc/group memberships apply whatever form USER takes.
    res, out = run_to_file(env, env.new_id(), env.request(env.image(), user=user, cmd=["id", "-G"]))
    assert res["code"] == 0, out
    assert out.split() == want.split()


def test_supervisor_killed_inside_create_leaves_nothing_after_restart(env):
    """SIGKILL while CreateContainer runs (as soon as its state directory exists); whatever the moment,
    after the restart the container is either listed (creation had completed) or nothing of it is left."""
    cid = env.new_id()
    req = env.request(env.image(), detach=True, cmd=["sleep", "1000"])
    call = json.dumps({"op": "create", "id": cid, "request": req})
    client = subprocess.Popen(["runuser", "-u", "berth-broker", "--", "env", f"BUS={env.bus.address}",
                               "/usr/bin/python3", str(env.client), call],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stack.wait_for(lambda: (env.runtime / "containers" / cid).exists() or client.poll() is not None,
                   interval=0.001, what="creation under way")
    env.kill_supervisor()
    client.communicate(timeout=120)
    env.start()
    if cid in env.call(op="list"):
        assert env.call(op="delete", id=cid, flags=1) == {}
    assert env.leftovers(cid) == []


def test_read_only_rootfs(env):
    res, out = run_to_file(env, env.new_id(), env.request(env.image(), read_only=True,
                                                          cmd=["sh", "-c", "echo x > /x && echo wrote"]))
    assert res["code"] != 0 and "wrote" not in out
    res, out = run_to_file(env, env.new_id(), env.request(env.image(), cmd=["sh", "-c", "echo x > /x && echo wrote"]))
    assert res["code"] == 0 and "wrote" in out


def test_oom_kill_is_reported(env):
    req = env.request(env.image(), memory=16 * 1024 * 1024,
                      cmd=["sh", "-c", "v=$(head -c 200000000 /dev/zero | tr '\\000' x); echo ${#v}"])
    res, out = run_to_file(env, env.new_id(), req)
    assert res == {"code": 137, "reason": "oom"}, out


def test_created_container_is_removed_without_force(env):
    cid = env.new_id()
    create_ok(env, cid, env.request(env.image(), cmd=["sleep", "1000"]))
    pid = env.call(op="list")[cid]["Pid"]
    assert env.call(op="delete", id=cid) == {}
    assert not stack.pid_alive(pid)
    assert env.leftovers(cid) == []


def test_duplicate_id_or_name_is_refused(env):
    digest = env.image()
    a, b = env.new_id(), env.new_id()
    create_ok(env, a, env.request(digest, name="same", cmd=["true"]))
    res = env.call(op="create", id=b, request=env.request(digest, name="same"))
    assert res.get("error") == "org.berth.Error.Exists", res
    assert env.leftovers(b) == []
    res = env.call(op="create", id=a, request=env.request(digest, name="other"))
    assert res.get("error") == "org.berth.Error.Exists", res
    assert env.call(op="delete", id=a) == {}


HOLDER = "import dbus, sys, time; b = dbus.SystemBus(); print(b.get_unique_name(), flush=True); time.sleep(120)"


@pytest.mark.parametrize("who", ["member", "root"])
def test_privileged_option_is_checked_with_polkit_for_the_forwarded_caller(who, member, tmp_path):
    """On the system bus with the real polkitd: the broker forwards a caller's bus name; the supervisor
    asks polkit about that caller, not about the broker. A member of group berth does not hold
    org.berth.container-privileged (auth_admin, no agent): refused naming the action. Root does: the
    request goes on and fails only on its (absent) image."""
    holder = subprocess.Popen((["runuser", "-u", member, "--"] if who == "member" else []) +
                              ["/usr/bin/python3", "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    try:
        caller = holder.stdout.readline().strip()
        assert caller.startswith(":"), caller
        client = Path(tempfile.mkdtemp(prefix="berth-sup-client-"))
        client.chmod(0o755)
        (client / "client.py").write_text(CLIENT)
        (client / "client.py").chmod(0o644)
        req = {"name": "priv", "owner": 0, "image_config": "sha256:" + "2" * 64, "net": "host"}
        args = {"op": "create", "id": hashlib.md5(str(tmp_path).encode()).hexdigest(), "request": req,
                "caller": caller}
        p = stack.run(["env", "BUS=unix:path=/run/dbus/system_bus_socket", "/usr/bin/python3",
                       str(client / "client.py"), json.dumps(args)], user="berth-broker")
        shutil.rmtree(client, ignore_errors=True)
        assert p.returncode == 0, p.stderr
        res = json.loads(p.stdout)
        if who == "member":
            assert res.get("error") == "org.berth.Error.NotAllowed", res
            assert PRIVILEGED in res["message"]
        else:
            assert res.get("error") == "org.berth.Error.NotFound", res
    finally:
        holder.kill()
        holder.wait()
