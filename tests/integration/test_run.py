"""berthctl run and the container commands, end to end through the installed stack: the CLI talks to the
broker only, the broker to the supervisor; as root, as a non-root member of group berth, as a second
member, as an admin granted container-manage-any by a polkit rule, and as a stranger.

The image is built by tools/busybox-image (Debian's busybox-static) and imported, as tools/quickstart
does.
"""
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from berthtest import stack
from berthtest.containers import berthctl, busybox_archive, imported_busybox, inspect, ls, ok
from berthtest.terminal import Terminal
from berthtest.containerd import Containerd

IMAGE = "localhost/berth-run-test:latest"
MEMBER2 = "berth-test-member2"
ADMIN = "berth-test-runadmin"
ADMIN_RULE = Path("/etc/polkit-1/rules.d/49-berth-test-run-admin.rules")
RUNTIME = Path("/run/berth/containers")
STATE = Path("/var/lib/berth")


def leftovers(cid):
    """Everything a container may leave on the host, by its id."""
    found = []
    if (RUNTIME / cid).exists():
        found.append(str(RUNTIME / cid))
    if (STATE / "meta" / "containers" / f"{cid}.json").exists():
        found.append("broker record")
    if cid in Path("/proc/self/mountinfo").read_text():
        found.append("mount")
    with open("/proc/1/mountinfo") as f:
        if cid in f.read():
            found.append("mount in the host namespace")
    for root in (Path("/sys/fs/cgroup"), STATE / "snapshots"):
        for dirpath, dirnames, _ in os.walk(root):
            for d in dirnames:
                if cid in d:
                    found.append(os.path.join(dirpath, d))
            if dirpath.count("/") > 8:
                dirnames[:] = []
    return found


@pytest.fixture(scope="module")
def image(tmp_path_factory, member):
    with imported_busybox(tmp_path_factory, IMAGE, remove_containers=True):
        stack.ensure_user(MEMBER2, groups=["berth"])
        stack.ensure_user(ADMIN, groups=["berth"])
        yield IMAGE


@pytest.fixture
def cleanup():
    names = []
    yield names
    for n in names:
        berthctl("rm", "-f", n)


# ---- run: exit statuses and stdio ------------------------------------------------------------------

@pytest.mark.parametrize("who", ["root", "member"])
@pytest.mark.parametrize("cmd,status", [
    (["true"], 0),
    (["sh", "-c", "exit 7"], 7),
    (["/nonexistent"], 127),
    (["/etc/passwd"], 126),
])
def test_run_exit_status(image, member, who, cmd, status):
    p = berthctl("run", "--rm", image, *cmd, user=member if who == "member" else None)
    assert p.returncode == status, p.stderr


def _foreground(args, name):
    """A foreground `run --name name … sh -c 'echo ready; …'` as root, returned once the container runs."""
    proc = subprocess.Popen([str(stack.BERTHCTL), "--no-ask-password", "run", "--rm", "--name", name, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n", proc.stderr.read()
    return proc


def test_run_killed_from_outside_exits_128_plus_n(image):
    proc = _foreground([image, "sh", "-c", "echo ready; exec sleep 1000"], "fg-kill")
    ok(berthctl("kill", "fg-kill"))
    assert proc.wait(60) == 137


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 42), (signal.SIGINT, 43), (signal.SIGHUP, 44)])
def test_signals_to_the_cli_reach_the_container(image, sig, status):
    script = ("trap 'exit 42' TERM; trap 'exit 43' INT; trap 'exit 44' HUP; echo ready; "
              "while :; do sleep 0.1; done")
    proc = _foreground([image, "sh", "-c", script], "fg-signal")
    proc.send_signal(sig)
    assert proc.wait(60) == status, proc.stderr.read()


def test_stdio_goes_through_the_callers_pipes(image, member):
    p = berthctl("run", "--rm", "-i", image, "sh", "-c", "cat; echo to-stderr >&2; ls -l /proc/self/fd/0",
                 user=member, input="from-stdin\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("from-stdin\n")
    assert "to-stderr" in p.stderr and "to-stderr" not in p.stdout
    # The container's stdin is the caller's pipe itself, not a copy through a service.
    assert "pipe:" in p.stdout


def test_without_i_stdin_is_not_attached(image):
    p = berthctl("run", "--rm", image, "cat", input="should-not-arrive\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""


def test_env_workdir_user_hostname_entrypoint(image, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# comment\nFROM_FILE=yes\n")
    p = ok(berthctl("run", "--rm", "-e", "A=1", "--env-file", str(env_file), "-w", "/tmp", "-u", "nobody",
                    "--hostname", "boxy", "--entrypoint", "sh", image, "-c",
                    "echo $A $FROM_FILE; pwd; id -u; hostname"))
    assert p.stdout.split() == ["1", "yes", "/tmp", "65534", "boxy"]


def test_tty_through_a_pty(image, member):
    t = Terminal([str(stack.BERTHCTL), "--no-ask-password", "run", "--rm", "-t", "-i", IMAGE, "sh", "-c",
                  "tty; stty size; read line; echo got:$line; exit 3"], user=member, size=(33, 101))
    t.expect(b"33 101")
    t.type(b"typed\r")
    assert t.finish() == 3, t.output
    text = t.output.decode(errors="replace")
    assert re.search(r"/dev/pts/\d+", text), text
    assert "33 101" in text, text
    assert "got:typed" in text, text


# ---- detached containers, logs, stop, kill, wait, rm ------------------------------------------------

def test_detached_logs_kill_wait_rm(image, member, cleanup):
    cleanup.append("det")
    p = ok(berthctl("run", "-d", "--name", "det", image, "sh", "-c", "echo out; echo err >&2; exec sleep 1000",
                    user=member))
    cid = p.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", cid)
    c = ls(member)["det"]
    assert c["Status"] == "running" and c["Pid"] > 0 and c["Id"] == cid
    stack.wait_for(lambda: "out" in berthctl("logs", "det", user=member).stdout, what="log written")
    logs = ok(berthctl("logs", "det", user=member))
    # Each stream back where it came from.
    assert logs.stdout == "out\n" and logs.stderr == "err\n", logs
    ok(berthctl("kill", "-s", "TERM", "det", user=member))   # pid 1 without a handler: ignored
    assert ls(member)["det"]["Status"] == "running"
    ok(berthctl("kill", "det", user=member))                 # SIGKILL
    w = berthctl("wait", "det", user=member)
    assert w.returncode == 137 and w.stdout.strip() == "137"
    assert ls(member)["det"]["Status"] == "stopped"
    ok(berthctl("rm", "det", user=member))
    assert "det" not in ls(member)
    assert leftovers(cid) == []


def test_stop_sigterm_then_sigkill(image, cleanup):
    cleanup += ["stop-kill", "stop-term"]
    ok(berthctl("run", "-d", "--name", "stop-kill", image, "sleep", "1000"))
    ok(berthctl("run", "-d", "--name", "stop-term", image, "sh", "-c",
                "trap 'exit 0' TERM; while :; do sleep 0.1; done"))
    # sleep as pid 1 ignores SIGTERM: SIGKILL after the timeout; a stop by the user is no failure.
    ok(berthctl("stop", "-t", "1", "stop-kill"))
    ok(berthctl("stop", "-t", "60", "stop-term"))
    c = ls()
    assert (c["stop-kill"]["Status"], c["stop-kill"]["ExitCode"]) == ("stopped", 137)
    assert (c["stop-term"]["Status"], c["stop-term"]["ExitCode"]) == ("stopped", 0)
    assert berthctl("wait", "stop-term").returncode == 0


def test_rm_of_a_running_container_needs_force(image, cleanup):
    cleanup.append("busy")
    cid = ok(berthctl("run", "-d", "--name", "busy", image, "sleep", "1000")).stdout.strip()
    p = berthctl("rm", "busy")
    assert p.returncode != 0 and "running" in p.stderr
    ok(berthctl("rm", "-f", "busy"))
    assert leftovers(cid) == []


def test_run_rm_leaves_nothing(image, member):
    cid = ok(berthctl("run", "-d", "--rm", image, "true", user=member)).stdout.strip()
    w = berthctl("wait", cid, user=member)
    # Either Wait answered once the --rm container was gone, or it was gone already.
    assert w.returncode == 0 or "No container" in w.stderr, w.stderr
    assert leftovers(cid) == []
    assert cid not in {c["Id"] for c in ls().values()}


def test_foreground_run_rm_removes_after_reporting_the_exit(image, member):
    """An attached `run --rm` returns at the exit (Wait EXIT_ONLY); the removal follows on its own."""
    p = berthctl("run", "--rm", "--name", "rm-after-exit", image, "sh", "-c", "exit 5", user=member)
    assert p.returncode == 5, p.stderr
    stack.wait_for(lambda: "rm-after-exit" not in ls(), timeout=60, what="the --rm container removed")
    # Nor is its supervisor state left: no state record names it.
    for d in RUNTIME.iterdir() if RUNTIME.exists() else []:
        state = d / "state"
        assert not (state.exists() and json.loads(state.read_text()).get("name") == "rm-after-exit"), d


def test_run_rm_same_name_twice_in_a_row(image):
    """The name of a --rm container still being removed is waited for, not refused with Exists."""
    for status in (3, 4):
        p = berthctl("run", "--rm", "--name", "rm-twice", image, "sh", "-c", f"exit {status}")
        assert p.returncode == status, p.stderr
    stack.wait_for(lambda: "rm-twice" not in ls(), timeout=60, what="the --rm container removed")


def test_wait_exit_only_flag_is_accepted_and_unknown_bits_refused(image, cleanup):
    cleanup.append("wait-flags")
    cid = ok(berthctl("run", "-d", "--name", "wait-flags", image, "sh", "-c", "exit 9")).stdout.strip()
    path = f"/org/berth/Broker1/container/{cid}"
    args = ["--system", "call", "org.berth.Broker1", path, "org.berth.Broker1.Container", "Wait", "t"]
    p = subprocess.run(["busctl", *args, "1"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.split()[:2] == ["is", "9"], p
    p = subprocess.run(["busctl", *args, "4"], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0, p


def test_create_then_start_attached(image, cleanup):
    cleanup.append("later")
    ok(berthctl("create", "--name", "later", image, "sh", "-c", "echo hi; exit 3"))
    assert ls()["later"]["Status"] == "created"
    p = berthctl("start", "-a", "later")
    assert p.returncode == 3 and p.stdout == "hi\n", p


# ---- bad requests leave nothing -----------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["localhost/no-such-image:1", "true"], "No image"),
    (["--memory", "1k", IMAGE, "true"], "memory"),
    (["--name", "bad/name", IMAGE, "true"], "Invalid container name"),
    (["-u", "nosuchuser", IMAGE, "true"], "nosuchuser"),
    (["--cap-add", "NOT_A_CAP", IMAGE, "true"], "NOT_A_CAP"),
])
def test_bad_requests_are_refused_and_leave_nothing(image, member, args, message):
    before = set(os.listdir(RUNTIME)) if RUNTIME.exists() else set()
    names_before = set(ls())
    p = berthctl("run", "--rm", *args, user=member)
    assert p.returncode == 125, p
    assert message.lower() in p.stderr.lower(), p.stderr
    assert (set(os.listdir(RUNTIME)) if RUNTIME.exists() else set()) == before
    assert set(ls()) == names_before


def test_duplicate_name_is_refused(image, cleanup):
    cleanup.append("twice")
    ok(berthctl("create", "--name", "twice", image, "true"))
    p = berthctl("create", "--name", "twice", image, "true")
    assert p.returncode != 0 and "exists" in p.stderr


# ---- ls, inspect, busctl --------------------------------------------------------------------------------

def test_ls_and_inspect(image, cleanup):
    cleanup.append("insp")
    ok(berthctl("run", "-d", "--name", "insp", "--memory", "64m", "--pids-limit", "50", "--cpus", "0.5",
                "--read-only", image, "sleep", "1000"))
    table = ok(berthctl("ls")).stdout.splitlines()
    assert table[0].split() == ["NAME", "IMAGE", "STATUS", "PID", "OWNER", "CREATED", "RESTARTS"]
    row = next(l for l in table if l.startswith("insp "))
    assert IMAGE in row and "running" in row and " root " in row
    i = inspect("insp")
    assert i["State"]["Status"] == "running" and i["State"]["Pid"] > 0 and i["State"]["Owner"] == 0
    assert i["Limits"] == {"Memory": 64 << 20, "CpuQuotaMilli": 500, "PidsLimit": 50}
    assert i["Spec"]["ReadOnlyRootfs"] is True and i["Config"]["cmd"] == ["sleep", "1000"]
    # The limits reached the container's cgroup.
    pid = i["State"]["Pid"]
    cg = Path(f"/proc/{pid}/cgroup").read_text()
    assert i["State"]["Id"] in cg
    # Aliases.
    assert "insp" in ok(berthctl("tasks", "ls")).stdout
    assert "insp" in ok(berthctl("containers", "ls")).stdout


def test_busctl_properties_and_properties_changed(image, cleanup):
    cleanup.append("bus")
    cid = ok(berthctl("run", "-d", "--name", "bus", image, "sleep", "1000")).stdout.strip()
    path = f"/org/berth/Broker1/container/{cid}"
    p = ok(stack.busctl("get-property", "org.berth.Broker1", path, "org.berth.Broker1.Container", "Status", "Name"))
    assert p.stdout.split() == ['s', '"running"', 's', '"bus"']
    # PropertiesChanged is unicast to connections that read the container (docs/api.md, "Signals"): one
    # that does and stays, watched by root's monitor.
    reader = subprocess.Popen(["/usr/bin/python3", "-c",
                               "import dbus, sys, time; b = dbus.SystemBus(); "
                               f"b.call_blocking('org.berth.Broker1', '{path}', 'org.freedesktop.DBus.Properties', "
                               "'GetAll', 's', ['org.berth.Broker1.Container']); print('read', flush=True); "
                               "time.sleep(300)"], stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline() == "read\n"
    mon = subprocess.Popen(["dbus-monitor", "--system",
                            f"type='signal',interface='org.freedesktop.DBus.Properties',path='{path}'"],
                           stdout=subprocess.PIPE, text=True)
    try:
        # dbus-monitor prints its own NameAcquired/NameLost first: it is subscribed after that.
        lines = []
        while not any("NameLost" in l for l in lines):
            lines.append(mon.stdout.readline())
        ok(berthctl("kill", "bus"))
        text = ""
        while '"stopped"' not in text:
            line = mon.stdout.readline()
            assert line, text
            text += line
        assert "PropertiesChanged" in text and "org.berth.Broker1.Container" in text
    finally:
        mon.kill()
        mon.wait()
        reader.kill()
        reader.wait()
    p = ok(stack.busctl("get-property", "org.berth.Broker1", path, "org.berth.Broker1.Container", "ExitCode"))
    assert p.stdout.split() == ["i", "137"]


# ---- who may do what ----------------------------------------------------------------------------------

def test_stranger_is_refused_naming_the_action(image, outsider):
    p = berthctl("run", "--rm", image, "true", user=outsider)
    assert p.returncode == 125 and "org.berth.container-run" in p.stderr, p.stderr
    p = berthctl("ls", user=outsider)
    assert p.returncode != 0 and "org.berth.info" in p.stderr, p.stderr


@pytest.mark.parametrize("option", [["--net", "host"], ["--privileged"], ["--cap-add", "NET_RAW"],
                                    ["--security-opt", "seccomp=unconfined"],
                                    ["--mount", "type=bind,src=/tmp,dst=/mnt,ro"]])
def test_privileged_options_refused_for_a_member(image, member, option):
    p = berthctl("run", "--rm", *option, image, "true", user=member)
    assert p.returncode == 125 and "org.berth.container-privileged" in p.stderr, p.stderr


def test_privileged_options_work_for_root(image):
    # The host's network namespace: the host's interfaces are there.
    host = sorted(os.listdir("/sys/class/net"))
    p = ok(berthctl("run", "--rm", "--net", "host", image, "ls", "/sys/class/net"))
    assert sorted(p.stdout.split()) == host


def test_bind_mounts_for_root(image, tmp_path):
    """--mount type=bind: the source travels as the caller's O_PATH fd and is bound where the caller
    sees it; ro is read-only inside, a writable bind writes through to the host."""
    src = tmp_path / "shared"
    src.mkdir()
    (src / "hello.txt").write_text("from the host\n")
    p = ok(berthctl("run", "--rm", "--mount", f"type=bind,src={src},dst=/data,ro", image,
                    "sh", "-c", "cat /data/hello.txt; echo x > /data/new 2>/dev/null && echo wrote || echo refused"))
    assert p.stdout.splitlines() == ["from the host", "refused"], p.stdout + p.stderr
    assert not (src / "new").exists()
    ok(berthctl("run", "--rm", "--mount", f"type=bind,src={src},dst=/data", image,
                "sh", "-c", "echo inside > /data/new"))
    assert (src / "new").read_text() == "inside\n"


def test_ownership(image, member, cleanup):
    cleanup.append("mine")
    ok(berthctl("run", "-d", "--name", "mine", image, "sleep", "1000", user=member))
    # Another member neither sees nor touches it.
    assert "mine" not in ls(MEMBER2)
    for verb in (["kill", "mine"], ["stop", "mine"], ["rm", "-f", "mine"], ["logs", "mine"]):
        p = berthctl(*verb, user=MEMBER2)
        assert p.returncode != 0 and "org.berth.container-manage-any" in p.stderr, (verb, p.stderr)
    assert ls()["mine"]["Status"] == "running"
    # An admin granted container-manage-any may.
    ADMIN_RULE.write_text('polkit.addRule(function(action, subject) {\n'
                          '  if (action.id == "org.berth.container-manage-any" && subject.user == "%s")\n'
                          '    return polkit.Result.YES;\n});\n' % ADMIN)
    try:
        stack.wait_for(lambda: berthctl("ls", "--all-users", user=ADMIN).returncode == 0, timeout=30,
                       what="polkitd reloading its rules")
        assert "mine" in ls(ADMIN, "--all-users")
        ok(berthctl("kill", "mine", user=ADMIN))
        assert berthctl("wait", "mine", user=ADMIN).returncode == 137
    finally:
        ADMIN_RULE.unlink()


# ---- same or stricter than ctr run --------------------------------------------------------------------

PROBE = ("grep -E '^(CapEff|CapBnd|CapInh|CapAmb|Seccomp|NoNewPrivs):' /proc/self/status; "
         "echo fds: $(ls /proc/self/fd); "
         "for p in /proc/kcore /proc/keys /proc/timer_list /sys/firmware; do "
         "  if [ -d $p ]; then c=$(ls -A $p 2>/dev/null | head -1); else c=$(head -c1 $p 2>/dev/null | od -An | head -1); fi; "
         "  [ -n \"$c\" ] && echo open-$p: readable; done; true")


def probe_values(text):
    v = {}
    for line in text.splitlines():
        if ":" in line:
            k, _, rest = line.partition(":")
            v[k.strip()] = rest.strip()
    return v


def test_same_or_stricter_than_ctr_run(image, tmp_path):
    archive = busybox_archive(tmp_path / "busybox.tar", IMAGE)
    ctrd = Containerd(tmp_path / "ctrd").start()
    try:
        ctrd.ctr("images", "import", str(archive), check=True)
        theirs = probe_values(ctrd.ctr("run", "--rm", IMAGE, "probe", "sh", "-c", PROBE, check=True).stdout)
    finally:
        ctrd.stop()
    ours = probe_values(ok(berthctl("run", "--rm", image, "sh", "-c", PROBE)).stdout)
    for k in ("CapEff", "CapBnd", "CapInh", "CapAmb"):
        o, t = int(ours[k], 16), int(theirs[k], 16)
        assert o & ~t == 0, f"{k}: berth {o:x} has bits ctr's {t:x} lacks"
    assert int(ours["Seccomp"]) >= int(theirs["Seccomp"]) and int(ours["Seccomp"]) == 2
    assert int(ours["NoNewPrivs"]) >= int(theirs["NoNewPrivs"])
    # Only 0, 1, 2 (and the fd ls itself opens) inside.
    assert len(ours["fds"].split()) <= len(theirs["fds"].split())
    assert not any(k.startswith("open-") for k in ours), ours


# ---- the supervisor killed while containers run --------------------------------------------------------

def test_supervisor_killed_while_containers_run(image, member, cleanup):
    cleanup += ["keeps", "dies"]
    ok(berthctl("run", "-d", "--name", "keeps", image, "sh", "-c", "echo before; exec sleep 1000", user=member))
    ok(berthctl("run", "-d", "--name", "dies", image, "sleep", "1000", user=member))
    pids = {n: c["Pid"] for n, c in ls(member).items() if n in ("keeps", "dies")}
    sup = stack.name_pid("org.berth.Supervisor1")
    assert sup
    os.kill(sup, signal.SIGKILL)
    stack.wait_for(lambda: not stack.pid_alive(sup), what="supervisor gone")
    # While it is away, one container dies; the other keeps running.
    os.kill(pids["dies"], signal.SIGKILL)
    stack.wait_for(lambda: not stack.pid_alive(pids["dies"]), what="container init gone")
    assert stack.pid_alive(pids["keeps"])
    # The next call brings the supervisor back (bus activation); it re-adopts its shims.
    c = ls(member)
    assert c["keeps"]["Status"] == "running" and c["keeps"]["Pid"] == pids["keeps"]
    assert (c["dies"]["Status"], c["dies"]["ExitCode"]) == ("stopped", 137)
    assert berthctl("wait", "dies", user=member).returncode == 137
    assert "before" in ok(berthctl("logs", "keeps", user=member)).stdout
    ok(berthctl("kill", "keeps", user=member))
    assert berthctl("wait", "keeps", user=member).returncode == 137
    ok(berthctl("rm", "keeps", "dies", user=member))
