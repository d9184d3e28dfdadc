"""The container engine (services/supervisor/engine.c) alone, through its test driver berth-runspec.

Each test writes an OCI bundle (config.json + a busybox-static rootfs built from the same entries as the
images the other tests push) and checks from inside the container, or from the host while the init waits
at its start point (``berth-runspec create``). Runs as root; needs no berth service. The regression
cases of security.md S1-S15 that belong to the engine are marked with their number.
"""
import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from berthtest import stack
from berthtest.images import Dir, File, Hardlink, Symlink, busybox_rootfs_layer

RUNSPEC = stack.BUILD / "services" / "supervisor" / "berth-runspec"
PROBE_SRC = Path(__file__).resolve().parent / "engine" / "syscall-probe.c"
CGROUP_PARENT = "berth-enginetest"

# podman's 11 default capabilities (no NET_RAW, MKNOD, AUDIT_WRITE)
DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
                "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID",
                "CAP_SYS_CHROOT"]
CAP_BITS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_KILL": 5,
            "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_NET_BIND_SERVICE": 10,
            "CAP_NET_ADMIN": 12, "CAP_SYS_CHROOT": 18, "CAP_SYS_ADMIN": 21, "CAP_SETFCAP": 31}
# The fds of a process the container's init forks first (it holds what the init held at its exec):
# listing pid 1's own table from inside would catch the shell's pipes for $(…) or |.
FDS_CMD = "sleep 30 & p=$!; echo FDS=$(ls /proc/$p/fd | tr '\\n' ' '); kill $p"
MASKED = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
          "/sys/devices/virtual/powercap"]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def cap_mask(names):
    return sum(1 << CAP_BITS[n] for n in names)


def materialize(entries, root):
    """Write layer entries (berthtest.images) as a plain directory tree."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for e in entries:
        p = root / e.path.lstrip("/")
        if isinstance(e, Dir):
            p.mkdir(parents=True, exist_ok=True)
            os.chmod(p, e.mode)
        elif isinstance(e, File):
            p.parent.mkdir(parents=True, exist_ok=True)
            if e.source:
                shutil.copyfile(e.source, p)
            else:
                p.write_bytes(e.content.encode() if isinstance(e.content, str) else e.content)
            os.chmod(p, e.mode)
            os.chown(p, e.uid, e.gid)
        elif isinstance(e, Symlink):
            p.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(e.target, p)
        elif isinstance(e, Hardlink):
            os.link(root / e.target.lstrip("/"), p)
        else:
            raise AssertionError(f"entry type {type(e).__name__} not supported here")


@pytest.fixture(scope="session")
def probe(tmp_path_factory):
    out = tmp_path_factory.mktemp("probe") / "syscall-probe"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(out), str(PROBE_SRC)], check=True)
    return out


@pytest.fixture(scope="session")
def base_rootfs(tmp_path_factory, probe):
    assert RUNSPEC.exists(), f"{RUNSPEC} not built (ninja -C {stack.BUILD})"
    root = tmp_path_factory.mktemp("rootfs") / "rootfs"
    entries = busybox_rootfs_layer()
    entries += [
        File("etc/group", "root:x:0:\nnogroup:x:65534:\nsecret:x:4242:\n"),
        File("secret", "top secret\n", mode=0o604, gid=4242),
        File("probe", source=str(probe), mode=0o755),
        File("notexec", "#!/bin/sh\necho no\n", mode=0o644),
    ]
    materialize(entries, root)
    yield root
    for d in Path("/sys/fs/cgroup").glob(f"*/{CGROUP_PARENT}"):
        try:
            d.rmdir()
        except OSError:
            pass


def default_spec(root, args):
    caps = list(DEFAULT_CAPS)
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0, "additionalGids": []},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps,
                             "inheritable": [], "ambient": []},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": str(root), "readonly": False},
        "hostname": "berthbox",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=755"]},
        ],
        "annotations": {"org.berth.seccomp": "default"},
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "cgroupsPath": f"/{CGROUP_PARENT}/{uuid.uuid4().hex}",
            "maskedPaths": list(MASKED),
            "readonlyPaths": list(READONLY),
        },
    }


class Bundle:
    def __init__(self, path, spec):
        self.path = Path(path)
        self.spec = spec

    def write(self):
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "config.json").write_text(json.dumps(self.spec, indent=1))
        return self

    def run(self, timeout=60, **kw):
        self.write()
        return subprocess.run([str(RUNSPEC), "run", str(self.path)], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, **kw)

    def create(self, **kw):
        """berth-runspec create: returns (Popen, init pid); write "start\\n" to start it."""
        self.write()
        p = subprocess.Popen([str(RUNSPEC), "create", str(self.path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        line = p.stdout.readline()
        if not line.strip().isdigit():
            out, err = p.communicate(timeout=30)
            raise AssertionError(f"create failed: {line}{out}{err}")
        return p, int(line)


@pytest.fixture
def bundle(tmp_path, base_rootfs):
    def make(args, root=None):
        return Bundle(tmp_path / f"bundle-{uuid.uuid4().hex[:8]}", default_spec(root or base_rootfs, args))
    return make


@pytest.fixture
def own_rootfs(tmp_path, base_rootfs):
    """A private copy of the rootfs that a test may plant things in."""
    def make(extra=()):
        root = tmp_path / f"rootfs-{uuid.uuid4().hex[:8]}"
        shutil.copytree(base_rootfs, root, symlinks=True)
        materialize(list(extra), root)
        return root
    return make


def status_fields(text):
    return {k: v.strip() for k, v in re.findall(r"^(\w+):\s*(.*)$", text, re.M)}


# ---------------------------------------------------------------- process, identity, exit statuses

def test_defaults_inside(bundle):
    r = bundle(["sh", "-c", "cat /proc/self/status; echo HOST=$(hostname); echo NOFILE=$(ulimit -n); "
                            "echo IDS=$(id -u):$(id -g):$(id -G); " + FDS_CMD]).run()
    assert r.returncode == 0, r.stderr
    st = status_fields(r.stdout)
    allowed = cap_mask(DEFAULT_CAPS)
    for k in ("CapEff", "CapPrm", "CapBnd"):
        assert int(st[k], 16) == allowed, (k, st[k])
    assert int(st["CapInh"], 16) == 0 and int(st["CapAmb"], 16) == 0
    assert st["Seccomp"] == "2" and st["NoNewPrivs"] == "1"
    assert "HOST=berthbox" in r.stdout
    assert "NOFILE=1024" in r.stdout
    assert "IDS=0:0:0" in r.stdout
    assert re.search(r"^FDS=0 1 2$", r.stdout, re.M), r.stdout


def test_exit_statuses(bundle):
    assert bundle(["sh", "-c", "exit 3"]).run().returncode == 3
    r = bundle(["/does/not/exist"]).run()
    assert r.returncode == 127 and "No such file" in r.stderr
    r = bundle(["no-such-command-in-path"]).run()
    assert r.returncode == 127
    r = bundle(["/notexec"]).run()
    assert r.returncode == 126 and "Permission denied" in r.stderr
    r = bundle(["/etc"]).run()
    assert r.returncode == 126


def test_exit_on_signal_is_128_plus_n(bundle):
    p, pid = bundle(["sleep", "100"]).create()
    p.stdin.write("start\n")
    p.stdin.flush()
    os.kill(pid, 9)  # from the host: pid 1 of its namespace is killable from outside only
    p.communicate(timeout=30)
    assert p.returncode == 128 + 9


def test_exec_error_fd_and_no_start(bundle):
    # closing start without a byte makes the init exit without running anything
    b = bundle(["sh", "-c", "echo RAN > /tmp/ran"])
    p, pid = b.create()
    p.stdin.close()
    p.wait(timeout=30)
    assert not (Path(b.spec["root"]["path"]) / "tmp" / "ran").exists()


def test_user_groups_and_cve_2023_25173(bundle):
    """S8: supplementary groups are exactly additionalGids (setgroups always, even to [])."""
    b = bundle(["sh", "-c", "echo IDS=$(id -u):$(id -g):$(id -G); cat /secret"])
    b.spec["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [4242, 65534]}
    r = b.run()
    assert "IDS=1000:1000:1000 4242 65534" in r.stdout, r.stdout + r.stderr
    # 0604 root:secret: the group bit denies members of secret
    assert "top secret" not in r.stdout and r.returncode != 0

    b = bundle(["sh", "-c", "echo IDS=$(id -G); cat /secret"])
    b.spec["process"]["user"] = {"uid": 1000, "gid": 1000}
    r = b.run()
    assert "IDS=1000\n" in r.stdout and "top secret" in r.stdout  # not a member: "other" may read


@pytest.mark.parametrize("uid", [2**32 - 1, 2**32, -1, 2**63])
def test_user_values_that_overflow_are_refused(bundle, uid):
    """S10: (uid_t)-1 and anything wider never becomes a uid (least of all 0)."""
    b = bundle(["id", "-u"])
    b.spec["process"]["user"]["uid"] = uid
    r = b.run()
    assert r.returncode == 1 and "uid" in r.stderr, r.stdout + r.stderr


def test_large_uid_is_exact(bundle):
    b = bundle(["sh", "-c", "echo U=$(id -u) G=$(id -g)"])
    b.spec["process"]["user"] = {"uid": 2147483648, "gid": 2147483649}
    r = b.run()
    assert r.returncode == 0 and "U=2147483648 G=2147483649" in r.stdout, r.stderr


def test_inheritable_caps_never_gained(bundle, own_rootfs):
    """S9: empty inheritable/ambient; a file with cap_net_admin+ei gains nothing."""
    root = own_rootfs([Dir("capbin")])
    shutil.copy(root / "bin" / "busybox", root / "capbin" / "cat")  # busybox picks the applet by name
    subprocess.run(["setcap", "cap_net_admin+ei", str(root / "capbin" / "cat")], check=True)
    b = bundle(["/capbin/cat", "/proc/self/status"], root=root)
    r = b.run()
    st = status_fields(r.stdout)
    assert int(st["CapInh"], 16) == 0 and int(st["CapAmb"], 16) == 0
    assert not int(st["CapEff"], 16) & (1 << CAP_BITS["CAP_NET_ADMIN"])
    assert not int(st["CapPrm"], 16) & (1 << CAP_BITS["CAP_NET_ADMIN"])


def test_non_root_user_has_no_effective_caps(bundle):
    b = bundle(["grep", "Cap", "/proc/self/status"])
    b.spec["process"]["user"] = {"uid": 1000, "gid": 1000}
    b.spec["process"]["capabilities"]["effective"] = []
    b.spec["process"]["capabilities"]["permitted"] = []
    st = status_fields(b.run().stdout)
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0
    assert int(st["CapBnd"], 16) == cap_mask(DEFAULT_CAPS)


def test_signal_state_reset(bundle):
    """A caller that blocks and ignores signals (a daemon on sd-event) passes neither to the container."""
    import signal

    def hostile_caller():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGCHLD, signal.SIGUSR1})
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    b = bundle(["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]).write()
    r = subprocess.run([str(RUNSPEC), "run", str(b.path)], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL, preexec_fn=hostile_caller, restore_signals=False)
    assert r.returncode == 0, r.stderr
    st = status_fields(r.stdout)
    assert int(st["SigBlk"], 16) == 0 and int(st["SigIgn"], 16) == 0, r.stdout


def test_oom_score_adj(bundle):
    b = bundle(["cat", "/proc/self/oom_score_adj"])
    b.spec["process"]["oomScoreAdj"] = 321
    r = b.run()
    assert r.returncode == 0 and r.stdout.strip() == "321", r.stderr
    b.spec["process"]["oomScoreAdj"] = 1001
    assert b.run().returncode == 1


def test_env_and_cwd(bundle):
    b = bundle(["sh", "-c", "echo X=$X; pwd"])
    b.spec["process"]["env"].append("X=a b=c")
    b.spec["process"]["cwd"] = "/work/dir"
    r = b.run()
    assert r.returncode == 0 and "X=a b=c\n/work/dir\n" in r.stdout, r.stderr


# ---------------------------------------------------------------- fds, cwd, exe (S1, S2, S7)

def test_no_host_fd_reaches_the_container(bundle, tmp_path):
    """S2 (a): an fd the caller leaked (a host directory) is closed; only 0-2 in the init."""
    leak = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)  # inheritable
    try:
        b = bundle(["sh", "-c", FDS_CMD])
        r = b.write() and subprocess.run([str(RUNSPEC), "run", str(b.path)], capture_output=True,
                                         text=True, timeout=60, pass_fds=(leak,))
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "FDS=0 1 2", r.stdout
    finally:
        os.close(leak)


def test_init_fds_before_exec(bundle):
    """S2 (a): while the init waits at the start point: stdio + its two sync pipes, nothing else."""
    b = bundle(["true"])
    p, pid = b.create()
    try:
        fds = {int(f): os.readlink(f"/proc/{pid}/fd/{f}") for f in os.listdir(f"/proc/{pid}/fd")}
        extra = {k: v for k, v in fds.items() if k > 2}
        # start_fd and exec_err_fd; the sync socket is closed before engine_create() returns
        assert len(extra) == 2 and all(v.startswith("pipe:") for v in extra.values()), fds
        for k in extra:
            flags = int(re.search(r"flags:\s+(\d+)", Path(f"/proc/{pid}/fdinfo/{k}").read_text()).group(1), 8)
            assert flags & 0o2000000, f"fd {k} is not O_CLOEXEC"
        assert os.readlink(f"/proc/{pid}/cwd") == "/"
        assert os.stat(f"/proc/{pid}/cwd").st_ino == os.stat(b.spec["root"]["path"]).st_ino
    finally:
        p.stdin.write("start\n")
        p.communicate(timeout=30)


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7, 8, 9, 10])
def test_cwd_via_proc_self_fd_is_refused(bundle, tmp_path, n):
    """S2 (b): process.cwd=/proc/self/fd/N never yields a cwd outside the root."""
    leak = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        b = bundle(["sh", "-c", "pwd; ls /proc/1/cwd/"])
        b.spec["process"]["cwd"] = f"/proc/self/fd/{n}"
        b.write()
        r = subprocess.run([str(RUNSPEC), "run", str(b.path)], capture_output=True, text=True, timeout=60,
                           pass_fds=(leak,))
    finally:
        os.close(leak)
    assert r.returncode == 1 and "working directory" in r.stderr, r.stdout + r.stderr


def test_init_not_dumpable_until_exec(bundle):
    """S7 (CVE-2016-9962): while the init holds anything of ours, a process of the container's uid can
    neither read its memory-backed /proc files nor follow its fd/cwd/exe links."""
    b = bundle(["sleep", "5"])
    b.spec["process"]["user"] = {"uid": 4321, "gid": 4321}
    p, pid = b.create()
    probe = ("import os, sys\n"
             "os.setgid(4321); os.setuid(4321)\n"
             "for f in ('environ', 'mem', 'fd/0', 'cwd', 'exe'):\n"
             "    try:\n"
             "        os.stat(f'/proc/{sys.argv[1]}/{f}'); open(f'/proc/{sys.argv[1]}/environ','rb').read()\n"
             "        print('OPEN', f)\n"
             "    except PermissionError:\n"
             "        print('DENIED', f)\n")
    try:
        r = subprocess.run(["/usr/bin/python3", "-c", probe, str(pid)], capture_output=True, text=True, timeout=30)
        assert "OPEN" not in r.stdout and r.stdout.count("DENIED") == 5, r.stdout + r.stderr
    finally:
        p.stdin.write("start\n")
        p.stdin.flush()
        os.kill(pid, 9)
        p.communicate(timeout=30)


def test_init_exe_is_a_sealed_copy(bundle):
    """S1 (CVE-2019-5736): the init's /proc/self/exe is a sealed memfd: not the host binary, not writable."""
    before = hashlib.sha256(RUNSPEC.read_bytes()).hexdigest()
    p, pid = bundle(["true"]).create()
    try:
        assert "memfd:" in os.readlink(f"/proc/{pid}/exe")
        import fcntl
        ro = os.open(f"/proc/{pid}/exe", os.O_RDONLY)
        try:
            seals = fcntl.fcntl(ro, 1034)  # F_GET_SEALS
        finally:
            os.close(ro)
        # F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE
        assert seals & 0xF == 0xF, hex(seals)
        # while it runs the kernel refuses writers (ETXTBSY); the seals refuse them for good
        try:
            fd = os.open(f"/proc/{pid}/exe", os.O_WRONLY)
        except OSError as e:
            assert e.errno in (errno.ETXTBSY, errno.EPERM, errno.EACCES), e
        else:
            try:
                with pytest.raises(PermissionError):
                    os.write(fd, b"\x7fELF-overwritten")
            finally:
                os.close(fd)
    finally:
        p.stdin.write("start\n")
        p.communicate(timeout=30)
    assert hashlib.sha256(RUNSPEC.read_bytes()).hexdigest() == before


def test_proc_self_exe_entrypoint_cannot_touch_host_binary(bundle, own_rootfs):
    """S1: an entrypoint '#!/proc/self/exe' runs the init's image inside the container: a sealed copy."""
    root = own_rootfs([File("evil", "#!/proc/self/exe\n", mode=0o755)])
    before = hashlib.sha256(RUNSPEC.read_bytes()).hexdigest()
    for _ in range(3):
        r = bundle(["/evil"], root=root).run()
        assert r.returncode in (2, 126, 127), r.stdout + r.stderr
    assert hashlib.sha256(RUNSPEC.read_bytes()).hexdigest() == before


def test_engine_refuses_unsealed_caller(bundle):
    """The guard itself: a caller that skipped exe_seal_reexec() gets no container, and nothing is left."""
    b = bundle(["true"]).write()
    env = dict(os.environ, BERTH_RUNSPEC_UNSEALED="1")
    r = subprocess.run([str(RUNSPEC), "run", str(b.path)], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1 and "unsealed" in r.stderr, r.stderr
    assert not any(Path("/sys/fs/cgroup").glob("*" + b.spec["linux"]["cgroupsPath"]))


# ---------------------------------------------------------------- mounts, /dev, masked paths (S3, S4, S5, S13)

def test_mounts_listed_in_mountinfo(bundle):
    r = bundle(["cat", "/proc/self/mountinfo"]).run()
    assert r.returncode == 0, r.stderr
    mounts = {}
    for line in r.stdout.splitlines():
        pre, post = line.split(" - ")
        f = pre.split()
        mounts[f[4]] = (f[5], post.split()[0], post.split()[2])
    assert mounts["/"][0].startswith("rw")
    assert mounts["/proc"][1] == "proc" and "nosuid" in mounts["/proc"][0]
    assert mounts["/dev"][1] == "tmpfs"
    assert mounts["/dev/pts"][1] == "devpts" and "ptmxmode=666" in mounts["/dev/pts"][2]
    assert mounts["/dev/shm"][1] == "tmpfs" and mounts["/dev/mqueue"][1] == "mqueue"
    assert mounts["/sys"][1] == "sysfs" and mounts["/sys"][0].startswith("ro")
    assert mounts["/sys/fs/cgroup"][0].startswith("ro")
    assert mounts["/run"][1] == "tmpfs"
    for d in ("null", "zero", "full", "random", "urandom", "tty"):
        assert f"/dev/{d}" in mounts
    for p in READONLY:
        if os.path.exists(p):
            assert mounts[p][0].startswith("ro"), p


def test_dev_contents(bundle):
    r = bundle(["sh", "-c", "ls -l /dev; readlink /dev/ptmx; echo x > /dev/null && echo NULLOK; "
                            "head -c 4 /dev/zero | wc -c"]).run()
    assert r.returncode == 0, r.stderr
    assert "pts/ptmx" in r.stdout and "NULLOK" in r.stdout and "\n4\n" in r.stdout
    for d, mm in (("null", "1,   3"), ("zero", "1,   5"), ("full", "1,   7"), ("random", "1,   8"),
                  ("urandom", "1,   9"), ("tty", "5,   0")):
        assert re.search(rf"^c.*{mm}.* {d}$", r.stdout, re.M), (d, r.stdout)


def test_masked_and_readonly_paths(bundle):
    """S13 / S4: masked files read empty and are the null device, masked dirs empty, writes fail,
    remount and umount are refused."""
    script = ("for p in %s; do [ -e $p ] || continue; n=0; [ -d $p ] && n=$(ls -A $p | wc -l); "
              "echo \"M $p $(cat $p 2>/dev/null | wc -c) $n\"; done; "
              "for p in %s; do [ -e $p ] || continue; "
              "if echo 1 > $p/x 2>/dev/null || echo 1 > $p 2>/dev/null; then echo \"W $p\"; fi; done; "
              "mount -o remount,rw /proc/sys 2>/dev/null && echo REMOUNTED; "
              "umount /proc/keys 2>/dev/null && echo UNMOUNTED; "
              "umount /proc/sys 2>/dev/null && echo UNMOUNTED; "
              "stat -c '%%t:%%T' /proc/keys" % (" ".join(MASKED), " ".join(READONLY)))
    r = bundle(["sh", "-c", script]).run()
    assert "W " not in r.stdout and "REMOUNTED" not in r.stdout and "UNMOUNTED" not in r.stdout, r.stdout
    for line in r.stdout.splitlines():
        if line.startswith("M "):
            _, path, size, entries = line.split()
            assert size == "0" and entries == "0", line
    assert r.stdout.strip().endswith("1:3")  # /proc/keys is the null device
    assert sum(1 for l in r.stdout.splitlines() if l.startswith("M ")) >= 3


def test_readonly_rootfs(bundle):
    b = bundle(["sh", "-c", "touch /newfile 2>&1; touch /tmp/x 2>&1; touch /run/ok && echo RUNOK"])
    b.spec["root"]["readonly"] = True
    r = b.run()
    assert "Read-only file system" in r.stdout and "RUNOK" in r.stdout, r.stdout


@pytest.mark.parametrize("target", ["/tmp/devx", "../../../", "/"])
def test_dev_symlink_in_image_is_refused(bundle, own_rootfs, tmp_path, target):
    """S4 (CVE-2026-41579 / CVE-2026-47766 class): an image whose /dev is a symlink is refused."""
    root = own_rootfs()
    os.rmdir(root / "dev")
    os.symlink(target, root / "dev")
    (root / "tmp" / "devx").mkdir()
    r = bundle(["true"], root=root).run()
    assert r.returncode == 1 and "symlink" in r.stderr, r.stderr
    assert list((root / "tmp" / "devx").iterdir()) == []


def test_dev_null_symlink_in_image_is_harmless(bundle, own_rootfs):
    """S4: /dev/null in the image pointing at a procfs file: hidden by our /dev, masks use 1:3."""
    root = own_rootfs([Symlink("dev/null", "/proc/sys/kernel/core_pattern")])
    r = bundle(["sh", "-c", "stat -c '%F %t:%T' /dev/null; cat /proc/keys | wc -c"], root=root).run()
    assert r.returncode == 0, r.stderr
    assert "character special file 1:3" in r.stdout and r.stdout.split()[-1] == "0"


def test_proc_symlink_in_image_is_refused(bundle, own_rootfs):
    """S5 / S6: /proc (and /sys) must be real directories (CVE-2019-16884, CVE-2023-27561)."""
    for name in ("proc", "sys"):
        root = own_rootfs()
        os.rmdir(root / name)
        os.symlink("/tmp", root / name)
        r = bundle(["true"], root=root).run()
        assert r.returncode == 1 and "symlink" in r.stderr, (name, r.stderr)


def test_masked_path_that_is_a_symlink_is_refused(bundle, own_rootfs):
    """S4: a masked path the image replaced by a symlink is refused, never followed."""
    root = own_rootfs([File("etc/shadowish", "x\n"), Symlink("etc/masked-link", "/etc/shadowish")])
    b = bundle(["true"], root=root)
    b.spec["linux"]["maskedPaths"].append("/etc/masked-link")
    r = b.run()
    assert r.returncode == 1 and "symlink" in r.stderr, r.stderr
    b = bundle(["true"], root=root)
    b.spec["linux"]["readonlyPaths"].append("/etc/masked-link")
    r = b.run()
    assert r.returncode == 1 and "symlink" in r.stderr, r.stderr


def test_bind_mount_destination_symlink_stays_in_root(bundle, own_rootfs, tmp_path):
    """S3 (CVE-2021-30465): a destination through symlinks to / or ../.. lands inside the rootfs."""
    marker = f"berth-s3-{uuid.uuid4().hex[:8]}"
    root = own_rootfs([Symlink("escape", "/"), Symlink("up", "../../../../..")])
    src = tmp_path / "src"
    src.mkdir()
    (src / "hello").write_text("hi\n")
    b = bundle(["sh", "-c", f"cat /{marker}-a/hello /{marker}-b/hello; grep {marker} /proc/self/mountinfo"],
               root=root)
    b.spec["mounts"] += [
        {"destination": f"/escape/{marker}-a", "type": "bind", "source": str(src), "options": ["rbind", "ro"]},
        {"destination": f"/up/{marker}-b", "type": "bind", "source": str(src), "options": ["bind"]},
    ]
    r = b.run()
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("hi") == 2
    assert not Path(f"/{marker}-a").exists() and not Path(f"/{marker}-b").exists()
    assert (root / f"{marker}-a").is_dir() and (root / f"{marker}-b").is_dir()


def test_bind_into_procfs_via_symlink_refused(bundle, own_rootfs, tmp_path):
    """A bind destination that the image routes into the container's /proc (or /sys) is refused."""
    f = tmp_path / "pattern"
    f.write_text("x\n")
    for link, dest, src in (("/proc/sys/kernel", "/data/core_pattern", f), ("/sys/kernel", "/data/mm", tmp_path)):
        root = own_rootfs([Symlink("data", link)])
        b = bundle(["true"], root=root)
        b.spec["mounts"].append({"destination": dest, "type": "bind", "source": str(src), "options": ["bind"]})
        r = b.run()
        assert r.returncode == 1 and "procfs or sysfs" in r.stderr, r.stderr


def test_file_bind_mounts(bundle, tmp_path):
    f = tmp_path / "resolv"
    f.write_text("nameserver 192.0.2.1\n")
    b = bundle(["sh", "-c", "cat /etc/resolv.conf /etc/new/dir/hosts; echo x > /etc/resolv.conf || echo RO"])
    b.spec["root"]["path"] = str(tmp_path / "root")
    shutil.copytree(Path(bundle(["true"]).spec["root"]["path"]), tmp_path / "root", symlinks=True)
    b.spec["mounts"] += [
        {"destination": "/etc/resolv.conf", "type": "bind", "source": str(f), "options": ["rbind", "ro"]},
        {"destination": "/etc/new/dir/hosts", "type": "bind", "source": str(f), "options": ["bind"]},
    ]
    r = b.run()
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("nameserver 192.0.2.1") == 2 and "RO" in r.stdout
    assert f.read_text() == "nameserver 192.0.2.1\n"


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="renameat2 is called by its x86_64 number")
def test_bind_mount_destination_race(bundle, own_rootfs, tmp_path):
    """S3 racing variant: a path component is exchanged with a symlink to / while containers start."""
    marker = f"berth-s3r-{uuid.uuid4().hex[:8]}"
    root = own_rootfs([Dir("vol/dir"), Symlink("vol/link", "/")])
    src = tmp_path / "src"
    src.mkdir()
    libc = ctypes.CDLL(None, use_errno=True)
    stop = threading.Event()

    def exchange():
        a, b_ = str(root / "vol" / "dir").encode(), str(root / "vol" / "link").encode()
        while not stop.is_set():
            libc.syscall(316, -100, a, -100, b_, 2)  # renameat2(..., RENAME_EXCHANGE) on x86_64

    t = threading.Thread(target=exchange, daemon=True)
    t.start()
    try:
        for _ in range(15):
            b = bundle(["true"], root=root)
            b.spec["mounts"].append({"destination": f"/vol/dir/{marker}", "type": "bind",
                                     "source": str(src), "options": ["bind"]})
            b.run()
    finally:
        stop.set()
        t.join()
    assert not Path(f"/{marker}").exists()


# ---------------------------------------------------------------- seccomp, sysctl (S12, S15)

def test_default_seccomp_profile_refuses(bundle):
    """S15: the new mount API, user namespaces, clone3 (ENOSYS), keyring, bpf, … and the 64-bit TIOCSTI."""
    r = bundle(["/probe"]).run()
    assert r.returncode == 0, r.stderr
    res = dict(line.split() for line in r.stdout.splitlines())
    for name, err in res.items():
        if name in ("getpid", "socket_inet", "ioctl_fionread"):
            assert err == "0", (name, err)
        elif name == "clone3":
            assert err == "38", err
        else:
            assert err != "0", f"{name} succeeded inside the container"


def test_seccomp_unconfined_by_annotation(bundle):
    b = bundle(["grep", "Seccomp:", "/proc/self/status"])
    b.spec["annotations"]["org.berth.seccomp"] = "unconfined"
    assert b.run().stdout.split() == ["Seccomp:", "0"]


def test_namespaced_sysctl_applied(bundle):
    b = bundle(["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced"])
    b.spec["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}
    host = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    r = b.run()
    assert r.returncode == 0 and r.stdout.split() == ["1", "1"], r.stderr
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host


@pytest.mark.parametrize("key,value", [
    ("kernel.shm_rmid_forced", "1+kernel.core_pattern=|/x"),
    ("kernel.core_pattern", "|/x"),
    ("kernel/core_pattern", "x"),
    ("net.ipv4/../../kernel/core_pattern", "x"),
    ("kernel.shm_rmid_forced=1+kernel.core_pattern", "x"),
    ("kernel.shm_rmid_forced", "1\nkernel.core_pattern=|/x"),
    ("vm.overcommit_memory", "1"),
])
def test_sysctl_injection_refused(bundle, key, value):
    """S12 (CVE-2022-0811): only namespaced keys, no smuggled second assignment."""
    before = Path("/proc/sys/kernel/core_pattern").read_text()
    b = bundle(["true"])
    b.spec["linux"]["sysctl"] = {key: value}
    r = b.run()
    assert r.returncode == 1 and "sysctl" in r.stderr, r.stderr
    assert Path("/proc/sys/kernel/core_pattern").read_text() == before


def test_net_sysctl_needs_own_netns(bundle):
    b = bundle(["true"])
    b.spec["linux"]["namespaces"] = [n for n in b.spec["linux"]["namespaces"] if n["type"] != "network"]
    b.spec["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    r = b.run()
    assert r.returncode == 1 and "not namespaced" in r.stderr


def test_loopback_up_and_isolated(bundle):
    r = bundle(["sh", "-c", "cat /sys/class/net/lo/operstate; ls /sys/class/net"]).run()
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] in ("unknown", "up") and r.stdout.split()[1:] == ["lo"]


# ---------------------------------------------------------------- cgroups

def host_cgroup_dir(pid, controller):
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if controller in ctrls.split(","):
            return Path("/sys/fs/cgroup") / controller / path.lstrip("/")
        if controller == "" and ctrls == "":
            return Path("/sys/fs/cgroup") / path.lstrip("/")
    raise AssertionError(f"no {controller} cgroup for {pid}")


def test_cgroup_limits_applied(bundle):
    b = bundle(["true"])
    b.spec["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 77},
                                    "cpu": {"quota": 50000, "period": 100000}}
    layout = "v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "v1"
    p, pid = b.create()
    try:
        if layout == "v1":
            mem = host_cgroup_dir(pid, "memory")
            assert mem.name == b.spec["linux"]["cgroupsPath"].rsplit("/", 1)[1]
            assert int((mem / "memory.limit_in_bytes").read_text()) == 64 << 20
            assert int((host_cgroup_dir(pid, "pids") / "pids.max").read_text()) == 77
            assert int((host_cgroup_dir(pid, "cpu") / "cpu.cfs_quota_us").read_text()) == 50000
            if os.path.exists("/sys/fs/cgroup/unified/cgroup.controllers"):  # hybrid: joined there too
                unified = [l for l in Path(f"/proc/{pid}/cgroup").read_text().splitlines() if l.startswith("0::")]
                assert unified and unified[0].endswith(b.spec["linux"]["cgroupsPath"]), unified
            oom_file = Path(b.path / "oom-file").read_text().strip()
            assert oom_file == str(mem / "memory.oom_control")
        else:
            d = host_cgroup_dir(pid, "")
            assert (d / "memory.max").read_text().strip() == str(64 << 20)
            assert (d / "pids.max").read_text().strip() == "77"
    finally:
        p.stdin.write("start\n")
        p.communicate(timeout=30)
    # removed after the run
    assert not any(Path("/sys/fs/cgroup").glob("*" + b.spec["linux"]["cgroupsPath"]))


def test_cgroup_namespace_root(bundle):
    r = bundle(["cat", "/proc/self/cgroup"]).run()
    assert r.returncode == 0 and r.stdout.strip(), r.stdout
    for line in r.stdout.splitlines():
        assert line.endswith(":/"), line


def test_sys_fs_cgroup_shows_own_cgroup_read_only(bundle):
    """S15 (CVE-2022-0492): /sys/fs/cgroup is read-only, its hierarchies are rooted at the container's own
    cgroup (limits visible, no release_agent), and mounting a cgroup hierarchy is refused."""
    v2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    limit_file = "/sys/fs/cgroup/memory.max" if v2 else "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    b = bundle(["sh", "-c", f"echo LIMIT=$(cat {limit_file}); ls /sys/fs/cgroup/*/release_agent /sys/fs/cgroup/release_agent 2>/dev/null; "
                            "touch /sys/fs/cgroup/x 2>/dev/null && echo WROTE; "
                            "echo 1 > /sys/fs/cgroup/pids.max 2>/dev/null && echo WROTE; "
                            "echo 1 > /sys/fs/cgroup/pids/pids.max 2>/dev/null && echo WROTE; "
                            "mkdir -p /tmp/cg && mount -t cgroup -o rdma cgroup /tmp/cg 2>/dev/null && echo MOUNTED; "
                            "mount -t cgroup -o memory cgroup /tmp/cg 2>/dev/null && echo MOUNTED; "
                            "mount -t cgroup2 none /tmp/cg 2>/dev/null && echo MOUNTED; echo END"])
    b.spec["linux"]["resources"] = {"memory": {"limit": 48 << 20}}
    r = b.run()
    assert r.returncode == 0, r.stderr
    assert f"LIMIT={48 << 20}" in r.stdout, r.stdout
    assert "release_agent" not in r.stdout and "WROTE" not in r.stdout and "MOUNTED" not in r.stdout, r.stdout


def test_pids_limit_enforced(bundle):
    b = bundle(["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 1 & done 2>&1; wait; echo done"])
    b.spec["linux"]["resources"] = {"pids": {"limit": 4}}
    r = b.run()
    assert "fork" in r.stdout.lower() or "resource" in r.stdout.lower() or "fork" in r.stderr.lower(), r.stdout + r.stderr


def test_device_rules_from_the_spec(bundle):
    """linux.resources.devices decides which device nodes open: the v1 devices controller or, on cgroup
    v2, the eBPF filter (cgroup-devices-bpf.c). With CAP_MKNOD both nodes are made; only the allowed
    one opens, for the access the rule gives."""
    script = ("mknod /dev/a c 1 3 && mknod /dev/b c 1 5 && echo made; echo x > /dev/a && echo a-write; "
              "head -c1 /dev/b >/dev/null && echo b-read; echo x > /dev/b && echo b-write; true")
    rules = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "access": "m"},
             {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]
    outputs = []
    for extra in ([], [{"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"}]):
        b = bundle(["sh", "-c", script])
        for k in ("bounding", "effective", "permitted"):
            b.spec["process"]["capabilities"][k] = DEFAULT_CAPS + ["CAP_MKNOD"]
        b.spec["linux"]["resources"] = {"devices": rules + extra}
        r = b.run()
        assert r.returncode == 0, r.stderr
        outputs.append(r.stdout + r.stderr)
    denied, read_only = outputs
    assert "made" in denied and "a-write" in denied, denied
    assert "b-read" not in denied and "b-write" not in denied, denied
    assert "Operation not permitted" in denied, denied
    assert "b-read" in read_only and "b-write" not in read_only, read_only


def test_oom_kill_detected(bundle):
    b = bundle(["tail", "/dev/zero"])
    b.spec["linux"]["resources"] = {"memory": {"limit": 32 << 20}}
    r = b.run()
    assert r.returncode == 137 and "OOM-killed" in r.stderr, r.stderr
    events = Path(b.path / "oom-file").read_text().strip()
    assert events.endswith(("memory.oom_control", "memory.events"))


def test_failed_create_leaves_nothing(bundle):
    b = bundle(["true"])
    b.spec["linux"]["maskedPaths"].append("relative/path")  # refused by the spec reader
    r = b.run()
    assert r.returncode == 1
    b = bundle(["true"])
    b.spec["mounts"].append({"destination": "/x", "type": "bind", "source": "/nonexistent-source"})
    r = b.run()
    assert r.returncode == 1 and "nonexistent-source" in r.stderr
    assert not any(Path("/sys/fs/cgroup").glob("*" + b.spec["linux"]["cgroupsPath"]))


def test_terminal(bundle):
    b = bundle(["sh", "-c", "tty; stty size 2>/dev/null; echo T=$(readlink /proc/self/fd/0)"])
    b.spec["process"]["terminal"] = True
    r = b.run()
    assert r.returncode == 0, r.stderr
    assert "/dev/pts/0" in r.stdout


# ---------------------------------------------------------------- against runc

@pytest.mark.skipif(not shutil.which("runc"), reason="runc not installed")
def test_same_or_stricter_than_runc(bundle):
    script = "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; " + FDS_CMD
    ours = bundle(["sh", "-c", script]).run()
    theirs_b = bundle(["sh", "-c", script]).write()
    cid = f"berth-enginetest-{uuid.uuid4().hex[:8]}"
    theirs = subprocess.run(["runc", "run", "--bundle", str(theirs_b.path), cid], capture_output=True,
                            text=True, timeout=60, stdin=subprocess.DEVNULL)
    subprocess.run(["runc", "delete", "-f", cid], capture_output=True)
    assert ours.returncode == 0 and theirs.returncode == 0, ours.stderr + theirs.stderr
    o, t = status_fields(ours.stdout), status_fields(theirs.stdout)
    for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(o[k], 16) & ~int(t[k], 16) == 0, (k, o[k], t[k])  # ours ⊆ runc's
    assert int(o["NoNewPrivs"]) >= int(t["NoNewPrivs"])
    assert int(o["Seccomp"]) >= int(t["Seccomp"])
    assert ours.stdout.splitlines()[-1] == "FDS=0 1 2"

    # mounts: every mount point runc makes, we make too, and none of ours is writable where runc's is not
    def mounts(b, runtime):
        if runtime == "runc":
            c = f"berth-enginetest-{uuid.uuid4().hex[:8]}"
            out = subprocess.run(["runc", "run", "--bundle", str(b.path), c], capture_output=True, text=True,
                                 timeout=60, stdin=subprocess.DEVNULL).stdout
            subprocess.run(["runc", "delete", "-f", c], capture_output=True)
        else:
            out = b.run().stdout
        return {l.split()[4]: l.split()[5].split(",")[0] for l in out.splitlines()}
    o = mounts(bundle(["cat", "/proc/self/mountinfo"]), "berth")
    t = mounts(bundle(["cat", "/proc/self/mountinfo"]).write(), "runc")
    assert set(t) - set(o) == set(), set(t) - set(o)
    weaker = [m for m in set(o) & set(t) if o[m] == "rw" and t[m] == "ro"]
    assert weaker == [], weaker


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="systemd is PID 1 here: the scope backend runs")
def test_systemd_cgroups_path_without_systemd_is_refused(bundle):
    """Detect, don't assume: a systemd-style cgroupsPath on a machine without systemd as PID 1."""
    b = bundle(["true"])
    b.spec["linux"]["cgroupsPath"] = "system.slice:berth:enginetest"
    r = b.run()
    assert r.returncode == 1 and "systemd is not PID 1" in r.stderr, r.stderr


@pytest.mark.skipif(not os.path.isdir("/run/systemd/system"), reason="needs systemd as PID 1")
def test_systemd_scope(bundle):
    """Under systemd: a transient delegated scope holds the init, with the limits as unit properties."""
    name = uuid.uuid4().hex[:12]
    b = bundle(["true"])
    b.spec["linux"]["cgroupsPath"] = f"system.slice:berth-enginetest:{name}"
    b.spec["linux"]["resources"] = {"pids": {"limit": 55}}
    p, pid = b.create()
    try:
        cg = Path(f"/proc/{pid}/cgroup").read_text()
        assert f"berth-enginetest-{name}.scope" in cg, cg
        prop = subprocess.run(["systemctl", "show", "-p", "Delegate", "-p", "TasksMax",
                               f"berth-enginetest-{name}.scope"], capture_output=True, text=True).stdout
        assert "Delegate=yes" in prop and "TasksMax=55" in prop, prop
    finally:
        p.stdin.write("start\n")
        p.communicate(timeout=30)
