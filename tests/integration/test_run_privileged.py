"""Privileged run options end to end, each principal as itself (runuser, never root acting for them):

- a non-root administrator granted org.berth.container-privileged by a polkit rules file: each option does
  what it says inside a real container (CapEff, CapBnd, Seccomp, NoNewPrivs, devices, host network, bind
  mounts with ro enforced);
- a plain member of group berth: refused naming org.berth.container-privileged, nothing left behind;
- a stranger: refused by org.berth.container-run.

Also: `inspect` shows the summary of the container's real config.json, and /dev/console under -t.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from berthtest import stack
from berthtest.containers import berthctl, imported_busybox, ok
from berthtest.terminal import Terminal

IMAGE = "localhost/berth-priv-test:latest"
ADMIN = "berth-test-privadmin"
ADMIN_RULE = Path("/etc/polkit-1/rules.d/49-berth-test-privileged.rules")
RUNTIME = Path("/run/berth/containers")
ACTIVE = Path("/var/lib/berth/snapshots")
PRIVILEGED = "org.berth.container-privileged"

STATUS = "grep -E '^(CapEff|CapBnd|CapInh|CapAmb|Seccomp|NoNewPrivs):' /proc/self/status"


def status(text):
    v = {}
    for line in text.splitlines():
        k, sep, rest = line.partition(":")
        if sep:
            v[k.strip()] = rest.strip()
    return v


def host_state():
    """What a container may leave behind: state dirs, snapshot dirs, berth cgroups, shims."""
    found = set()
    if RUNTIME.exists():
        found |= {f"state:{d}" for d in os.listdir(RUNTIME)}
    for dirpath, dirnames, _ in os.walk(ACTIVE):
        if dirpath.count("/") > 6:
            dirnames[:] = []
        found |= {f"snap:{dirpath}/{d}" for d in dirnames if re.fullmatch(r"[0-9a-f]{32}", d)}
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        if dirpath.count("/") > 6:
            dirnames[:] = []
        # berth's cgroups only ("/berth/<id>", or berth.slice under systemd): other software on the host
        # makes hex-named cgroups of its own.
        found |= {f"cgroup:{dirpath}/{d}" for d in dirnames
                  if "berth" in f"{dirpath}/{d}" and re.search(r"[0-9a-f]{32}", d)}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "berth-shim":
                found.add(f"shim:{pid}")
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    with imported_busybox(tmp_path_factory, IMAGE):
        yield IMAGE


@pytest.fixture(scope="module")
def admin(image):
    """A non-root user in group berth granted container-privileged by a rules file (and nothing else)."""
    stack.ensure_user(ADMIN, groups=["berth"])
    ADMIN_RULE.write_text('polkit.addRule(function(action, subject) {\n'
                          '  if (action.id == "%s" && subject.user == "%s")\n'
                          '    return polkit.Result.YES;\n});\n' % (PRIVILEGED, ADMIN))
    try:
        stack.wait_for(lambda: berthctl("run", "--rm", "--cap-add", "NET_ADMIN", image, "true",
                                        user=ADMIN).returncode == 0,
                       timeout=30, what="polkitd loading the rule")
        yield ADMIN
    finally:
        ADMIN_RULE.unlink()


def run_status(user, *options, cmd=STATUS):
    return status(ok(berthctl("run", "--rm", *options, IMAGE, "sh", "-c", cmd, user=user)).stdout)


def supervisor_bounding():
    pid = stack.name_pid("org.berth.Supervisor1")
    assert pid
    return int(status(Path(f"/proc/{pid}/status").read_text())["CapBnd"], 16)


# ---- an administrator granted container-privileged -------------------------------------------------

def test_cap_add_adds_exactly_that_bit(admin):
    default = run_status(admin)
    added = run_status(admin, "--cap-add", "NET_ADMIN")
    net_admin = 1 << 12
    assert int(default["CapEff"], 16) & net_admin == 0
    assert int(added["CapEff"], 16) == int(default["CapEff"], 16) | net_admin
    assert int(added["CapBnd"], 16) == int(default["CapBnd"], 16) | net_admin
    # Nothing else moves: still seccomp-filtered, no new privileges, nothing inheritable or ambient.
    for k in ("Seccomp", "NoNewPrivs", "CapInh", "CapAmb"):
        assert added[k] == default[k], k
    assert added["Seccomp"] == "2" and added["NoNewPrivs"] == "1"


def test_cap_add_beyond_the_supervisors_set_fails_clearly(admin):
    """berth-supervisor.service narrows the bounding set (and so may the machine): a capability outside it
    is refused by name, nothing is created; one inside it is given."""
    bounding = supervisor_bounding()
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    missing = [c for c in range(last + 1) if not bounding & (1 << c)]
    names = subprocess.run(["capsh", f"--decode={1 << missing[0]:x}"], capture_output=True, text=True).stdout \
        if missing else ""
    if missing:
        cap = names.strip().split("=")[1].upper().removeprefix("CAP_")
        before = host_state()
        p = berthctl("run", "--rm", "--cap-add", cap, IMAGE, "true", user=admin)
        assert p.returncode == 125 and f"CAP_{cap}" in p.stderr and "bounding" in p.stderr, p.stderr
        assert host_state() - before == set()
    present = next(c for c in (16, 25, 19) if bounding & (1 << c))  # SYS_MODULE, SYS_TIME, SYS_PTRACE
    cap = subprocess.run(["capsh", f"--decode={1 << present:x}"], capture_output=True,
                         text=True).stdout.strip().split("=")[1].upper()
    v = run_status(admin, "--cap-add", cap)
    assert int(v["CapEff"], 16) & (1 << present)


def test_privileged_gets_every_capability_no_seccomp_and_the_host_devices(admin):
    v = run_status(admin, "--privileged", cmd=STATUS + "; echo devs: $(ls /dev)")
    bounding = supervisor_bounding()
    assert int(v["CapEff"], 16) == bounding and int(v["CapBnd"], 16) == bounding
    assert v["Seccomp"] == "0"
    # podman: --privileged also lifts no_new_privs (it is documented so in docs/api.md).
    assert v["NoNewPrivs"] == "0"
    assert v["CapInh"] == "0000000000000000" and v["CapAmb"] == "0000000000000000"
    inside = set(v["devs"].split())
    # podman binds the host's devices (not its pts, shm, mqueue, console): the same nodes are there.
    host = {d for d in os.listdir("/dev") if not os.path.islink(f"/dev/{d}")
            and os.path.exists(f"/dev/{d}") and (Path(f"/dev/{d}").is_char_device() or Path(f"/dev/{d}").is_block_device())
            and d not in ("console", "ptmx", "tty")}
    assert host <= inside, sorted(host - inside)
    # And they work: the device cgroup lets them be opened (loop-control or kmsg, whichever exists).
    for dev in ("loop-control", "kmsg"):
        if dev in host:
            ok(berthctl("run", "--rm", "--privileged", IMAGE, "sh", "-c", f"exec 3</dev/{dev}", user=admin))
            break
    # Without --privileged: only the defaults.
    plain = set(ok(berthctl("run", "--rm", IMAGE, "ls", "/dev", user=admin)).stdout.split())
    assert plain <= {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue",
                     "fd", "stdin", "stdout", "stderr", "console"}, plain


def test_seccomp_unconfined_keeps_no_new_privs(admin):
    v = run_status(admin, "--security-opt", "seccomp=unconfined")
    default = run_status(admin)
    assert v["Seccomp"] == "0" and v["NoNewPrivs"] == "1"
    assert v["CapEff"] == default["CapEff"] and v["CapBnd"] == default["CapBnd"]


def test_net_host(admin):
    host = sorted(os.listdir("/sys/class/net"))
    p = ok(berthctl("run", "--rm", "--net", "host", IMAGE, "ls", "/sys/class/net", user=admin))
    # Veth ends come and go with other containers (a --rm container's DEL runs after its exit status).
    assert [n for n in sorted(p.stdout.split()) if not n.startswith("veth")] == \
        [n for n in host if not n.startswith("veth")]
    # Without --net host: a network namespace of its own (loopback only with --net none; the default
    # bridge network adds its eth0, test_network.py).
    p = ok(berthctl("run", "--rm", "--net", "none", IMAGE, "ls", "/sys/class/net", user=admin))
    assert p.stdout.split() == ["lo"]


@pytest.fixture
def reachable(tmp_path):
    """A directory every user can enter (pytest's own tmp_path is root's, 0700)."""
    d = Path(tempfile.mkdtemp(prefix="berth-priv-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_bind_mounts_ro_enforced_and_rw_writes_through(admin, reachable):
    src = reachable / "shared"
    src.mkdir()
    (src / "hello.txt").write_text("from the host\n")
    os.chown(src, *stack_ids(admin))
    p = ok(berthctl("run", "--rm", "--mount", f"type=bind,src={src},dst=/data,ro", IMAGE, "sh", "-c",
                    "cat /data/hello.txt; echo x > /data/new 2>/dev/null && echo wrote || echo refused; "
                    "mount -o remount,rw /data 2>/dev/null && echo remounted || echo stays-ro; "
                    "grep ' /data ' /proc/self/mountinfo", user=admin))
    lines = p.stdout.splitlines()
    assert lines[:3] == ["from the host", "refused", "stays-ro"], p.stdout + p.stderr
    assert " ro," in lines[3] or lines[3].split()[5].startswith("ro"), lines[3]
    assert not (src / "new").exists()
    ok(berthctl("run", "--rm", "--mount", f"type=bind,src={src},dst=/data", IMAGE, "sh", "-c",
                "echo inside > /data/new", user=admin))
    assert (src / "new").read_text() == "inside\n"


def stack_ids(user):
    import pwd
    pw = pwd.getpwnam(user)
    return pw.pw_uid, pw.pw_gid


def test_a_path_the_admin_cannot_reach_is_refused(admin, reachable):
    """The source is resolved by berthctl as the caller (an O_PATH descriptor travels, never a path): a
    directory behind one only root may enter cannot be named. (container-privileged is root-equivalent
    anyway: --privileged gives the host's devices; SECURITY.md says so.)"""
    private = reachable / "private"
    (private / "inner").mkdir(parents=True)
    private.chmod(0o700)
    before = host_state()
    p = berthctl("run", "--rm", "--mount", f"type=bind,src={private}/inner,dst=/data,ro", IMAGE, "true",
                 user=admin)
    assert p.returncode == 125 and "Permission denied" in p.stderr, p.stderr
    assert host_state() - before == set()


# ---- a plain member and a stranger ---------------------------------------------------------------------

OPTIONS = [["--net", "host"], ["--privileged"], ["--cap-add", "NET_ADMIN"],
           ["--security-opt", "seccomp=unconfined"], ["--mount", "type=bind,src=/tmp,dst=/mnt,ro"],
           ["--mount", "type=bind,src=/tmp,dst=/mnt"]]


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: " ".join(o))
@pytest.mark.parametrize("detach", [False, True], ids=["fg", "detached"])
def test_member_is_refused_and_nothing_is_left(image, member, option, detach):
    before = host_state()
    names = {c["Name"] for c in json.loads(ok(berthctl("ls", "-a", "--json", user=member)).stdout)}
    p = berthctl("run", *(["-d"] if detach else ["--rm"]), *option, image, "true", user=member)
    assert p.returncode == 125 and PRIVILEGED in p.stderr, p.stderr
    assert host_state() - before == set()
    assert {c["Name"] for c in json.loads(ok(berthctl("ls", "-a", "--json", user=member)).stdout)} == names


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: " ".join(o))
def test_stranger_is_refused_by_container_run(image, outsider, option):
    before = host_state()
    p = berthctl("run", "--rm", *option, image, "true", user=outsider)
    assert p.returncode == 125 and "org.berth.container-run" in p.stderr, p.stderr
    assert PRIVILEGED not in p.stderr
    assert host_state() - before == set()


# ---- inspect shows the spec the container runs with ---------------------------------------------------

def test_inspect_reads_the_generated_spec(admin, member):
    name = "priv-inspect"
    try:
        ok(berthctl("run", "-d", "--name", name, "--cap-add", "NET_ADMIN", "--memory", "64m", "-e", "K=V",
                    "-w", "/tmp", IMAGE, "sleep", "1000", user=admin))
        cid = json.loads(ok(berthctl("inspect", name, user=admin)).stdout)[0]["State"]["Id"]
        config = json.loads((RUNTIME / cid / "config.json").read_text())
        s = json.loads(ok(berthctl("inspect", name, user=admin)).stdout)[0]["Spec"]
        assert s["Process"]["Args"] == ["sleep", "1000"] == config["process"]["args"]
        assert "K=V" in s["Process"]["Env"] and s["Process"]["Cwd"] == "/tmp"
        assert s["Process"]["User"] == {"Uid": 0, "Gid": 0, "AdditionalGids": config["process"]["user"].get("additionalGids", [])}
        assert "CAP_NET_ADMIN" in s["Process"]["Capabilities"]["Effective"]
        assert s["Process"]["Capabilities"]["Effective"] == config["process"]["capabilities"]["effective"]
        assert s["Process"]["NoNewPrivileges"] is True and s["Seccomp"] == "default"
        assert s["Resources"]["Memory"] == 64 << 20
        assert {n["Type"] for n in s["Namespaces"]} >= {"mount", "pid", "uts", "ipc", "network"}
        assert s["MaskedPaths"] == len(config["linux"]["maskedPaths"]) > 0
        assert s["ReadonlyPaths"] == len(config["linux"]["readonlyPaths"]) > 0
        assert [m["Destination"] for m in s["Mounts"]] == [m["destination"] for m in config["mounts"]]
        # A plain member may not read another user's container.
        p = berthctl("inspect", name, user=member)
        assert p.returncode != 0
    finally:
        berthctl("rm", "-f", name)


# ---- /dev/console under -t --------------------------------------------------------------------------------

def test_dev_console_is_the_pty(image, member):
    t = Terminal([str(stack.BERTHCTL), "--no-ask-password", "run", "--rm", "-t", IMAGE, "sh", "-c",
                  "stat -c 'console %t:%T' /dev/console; stat -L -c 'tty %t:%T' $(tty); "
                  "echo via-console > /dev/console"], user=member)
    assert t.finish() == 0, t.output
    text = t.output.decode(errors="replace")
    console = re.search(r"console (\w+:\w+)", text)
    tty = re.search(r"tty (\w+:\w+)", text)
    assert console and tty, text
    assert console.group(1) == tty.group(1), text
    assert "via-console" in text, text
    # Without -t there is no /dev/console (podman and runc: only with a terminal).
    p = ok(berthctl("run", "--rm", image, "sh", "-c", "test -e /dev/console && echo yes || echo no"))
    assert p.stdout.strip() == "no"
