"""A Debian 12 system booted with systemd as PID 1 under systemd-nspawn, for the booted system test.

    with BootedMachine(tree) as m:            # boots an ephemeral copy of tree; powers off and cleans up
        m.run(["systemctl", "is-system-running"])          # → CompletedProcess (text)
        m.run(["id"], user="alice")                          # through a PAM login (runuser -l)

What the machine shares with the host: the network (no --private-network), so a registry the test
serves on 127.0.0.1 is reachable from inside. What it does not: everything else; the tree holds no
berth, the checkout is copied in by the caller.

How it is started (the host has hybrid cgroups and no systemd of its own): nspawn runs from its own
cgroup under both /sys/fs/cgroup/unified and /sys/fs/cgroup/systemd, with
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1, --register=no and --keep-unit (no machined). Commands enter the
container's namespaces with nsenter and run as transient units of its systemd (systemd-run --wait
--pipe), so they live in its cgroups and journal like any service. SIGRTMIN+4 to its PID 1 powers it
off; whatever is left (a container that would not stop) is killed through the cgroups, which are then
removed, so nothing stays behind on the host, also when a test failed.
"""
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

# Where the test puts its input (the checkout as a tarball, helper scripts), read-only, inside.
INSIDE_INPUT = "/run/berth-systest-in"
# Where the checkout is unpacked and built inside.
INSIDE_SRC = "/root/berth"
# Figures measured during a session (times, exposure scores), printed at its end.
FIGURES = {}

# A hybrid host (these CI machines): nspawn needs a cgroup of its own in the unified hierarchy and in
# systemd's named v1 one. A pure cgroup v2 host: one, in the only hierarchy.
if Path("/sys/fs/cgroup/cgroup.controllers").exists():
    CGROUP_ROOTS = [Path("/sys/fs/cgroup")]
else:
    CGROUP_ROOTS = [Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd")]
BOOT_TIMEOUT = 300
POWEROFF_TIMEOUT = 90


class MachineError(RuntimeError):
    pass


def remove_stale_ephemeral_copies(tree):
    """nspawn --ephemeral copies the tree to .#machine.<name>… beside it and removes the copy when the
    container ends. A copy whose lock nobody holds was left by a killed run: remove it."""
    parent = Path(tree).parent
    for copy in parent.glob(".#machine.*"):
        if not copy.is_dir() or copy.name.endswith(".lck"):
            continue
        lock = parent / (".#" + copy.name + ".lck")
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            fd = None
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live container of another run
        finally:
            if fd is not None:
                os.close(fd)
        subprocess.run(["rm", "-rf", "--one-file-system", str(copy)], check=False)
        lock.unlink(missing_ok=True)


def remove_stale_cgroups():
    """Cgroups of earlier runs that were killed before they could clean up: empty ones go."""
    for root in CGROUP_ROOTS:
        for cg in root.glob("berth-systest-*"):
            procs = [p for p in cg.rglob("cgroup.procs") if p.read_text().strip()]
            if procs:
                continue  # a live run
            for d in sorted((p for p in cg.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                try:
                    d.rmdir()
                except OSError:
                    pass
            try:
                cg.rmdir()
            except OSError:
                pass


class BootedMachine:
    def __init__(self, tree, binds_ro=(), log_dir=None):
        self.tree = Path(tree)
        self.binds_ro = list(binds_ro)  # (host path, path inside)
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="berth-systest-log-"))
        self.cgroup_name = f"berth-systest-{os.getpid()}-{int(time.time())}"
        self.cgroups = [root / self.cgroup_name for root in CGROUP_ROOTS]
        self.nspawn = None
        self.leader = None

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self):
        try:
            self.boot()
        except BaseException:
            self.shutdown()
            raise
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def _enter_cgroups(self):
        # Runs in the child between fork and exec: nspawn must start from a cgroup of its own.
        for cg in self.cgroups:
            (cg / "cgroup.procs").write_text(str(os.getpid()))

    def boot(self):
        for root in CGROUP_ROOTS:
            if not root.is_dir():
                raise MachineError(f"{root} is not mounted: this host's cgroup layout is not supported")
        remove_stale_cgroups()
        for cg in self.cgroups:
            cg.mkdir()
        remove_stale_ephemeral_copies(self.tree)
        cmd = ["systemd-nspawn", "--boot", "--ephemeral", f"--directory={self.tree}", "--register=no",
               "--keep-unit", "--link-journal=no", "--resolv-conf=copy-host", "--console=read-only",
               f"--machine={self.cgroup_name}",
               # nspawn keeps CAP_NET_ADMIN only with --private-network; a real machine's PID 1 has it,
               # and the supervisor needs it to bring up each container's loopback.
               "--capability=CAP_NET_ADMIN",
               # nspawn's system call filter refuses bpf(), which a real machine's PID 1 never does; the
               # supervisor loads each container's cgroup v2 device filter with it.
               "--system-call-filter=bpf"]
        cmd += [f"--bind-ro={host}:{inside}" for host, inside in self.binds_ro]
        env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
        self.console_log = open(self.log_dir / "console.log", "wb")
        self.nspawn = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.console_log,
                                       stderr=subprocess.STDOUT, env=env, preexec_fn=self._enter_cgroups)
        deadline = time.monotonic() + BOOT_TIMEOUT
        while self.leader is None:
            self._check_alive()
            self.leader = self._find_leader()
            if time.monotonic() > deadline:
                raise MachineError("no init in the container; console:\n" + self.console())
            time.sleep(0.1)
        # `is-system-running --wait` returns when boot finished: running, or degraded if a unit failed
        # (reported by the caller's checks, not a reason to stop here).
        while True:
            self._check_alive()
            p = self.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=BOOT_TIMEOUT)
            state = p.stdout.strip()
            if state in ("running", "degraded"):
                self.boot_state = state
                return
            if time.monotonic() > deadline:
                raise MachineError(f"boot did not finish (state {state!r}); console:\n" + self.console())
            time.sleep(0.2)

    def _check_alive(self):
        if self.nspawn.poll() is not None:
            raise MachineError(f"systemd-nspawn exited with {self.nspawn.returncode}; console:\n" + self.console())

    def _find_leader(self):
        try:
            children = []
            for task in Path(f"/proc/{self.nspawn.pid}/task").iterdir():
                children += (task / "children").read_text().split()
            for pid in children:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                    return int(pid)
        except FileNotFoundError:
            pass
        return None

    def console(self, tail=4000):
        try:
            return (self.log_dir / "console.log").read_bytes()[-tail:].decode(errors="replace")
        except OSError:
            return ""

    def shutdown(self):
        """Power off, then make sure no process, cgroup or copy of the tree is left."""
        if self.nspawn is not None and self.nspawn.poll() is None:
            if self.leader:
                try:
                    os.kill(self.leader, signal.SIGRTMIN + 4)
                except ProcessLookupError:
                    pass
            try:
                self.nspawn.wait(timeout=POWEROFF_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.nspawn.kill()
                self.nspawn.wait()
        self._kill_cgroups()
        self._remove_cgroups()
        remove_stale_ephemeral_copies(self.tree)
        if getattr(self, "console_log", None):
            self.console_log.close()

    def _kill_cgroups(self):
        for _ in range(50):
            pids = set()
            for cg in self.cgroups:
                if cg.exists():
                    for procs in cg.rglob("cgroup.procs"):
                        try:
                            pids |= {int(p) for p in procs.read_text().split()}
                        except OSError:
                            pass
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)

    def _remove_cgroups(self):
        for cg in self.cgroups:
            if not cg.exists():
                continue
            # Depth first: a cgroup goes only once its children are gone.
            for d in sorted((p for p in cg.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
                try:
                    d.rmdir()
                except OSError:
                    pass
            try:
                cg.rmdir()
            except OSError as e:
                raise MachineError(f"cannot remove cgroup {cg}: {e}") from None

    # -- running things inside ---------------------------------------------------------------------
    def run(self, cmd, *, user=None, input=None, check=True, timeout=300, env=None, properties=()):
        """Run cmd inside as a transient service (root), or as `user` through a PAM login session
        (runuser -l: pam_systemd registers a logind session). Returns CompletedProcess (text)."""
        if user is not None:
            cmd = ["runuser", "-l", user, "-c", " ".join(shell_quote(c) for c in cmd)]
        full = ["nsenter", "-t", str(self.leader), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w",
                "systemd-run", "--wait", "--pipe", "--collect", "--quiet", "--service-type=exec"]
        full += [f"--setenv={k}={v}" for k, v in (env or {}).items()]
        full += [f"--property={p}" for p in properties]
        # systemd expands $VAR and turns $$ into $ in a unit's command line: pass "$" through as "$$".
        full += ["--", *(str(c).replace("$", "$$") for c in cmd)]
        p = subprocess.run(full, input=input, capture_output=True, text=True, timeout=timeout,
                           stdin=None if input is not None else subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise MachineError(f"inside the machine: {cmd} exited with {p.returncode}\n"
                               f"stdout: {p.stdout[-6000:]}\nstderr: {p.stderr[-6000:]}")
        return p

    def sh(self, script, **kw):
        return self.run(["/bin/sh", "-c", script], **kw)


def shell_quote(s):
    s = str(s)
    if s and all(c.isalnum() or c in "@%+=:,./-_" for c in s):
        return s
    return "'" + s.replace("'", "'\"'\"'") + "'"


def checkout_files(top):
    """The checkout as it is: tracked files (with uncommitted changes) and new files git does not
    ignore; never build dirs."""
    out = subprocess.run(["git", "-C", str(top), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, check=True).stdout
    names = sorted({n for n in out.decode().split("\0") if n})
    return [n for n in names if (Path(top) / n).is_file() or (Path(top) / n).is_symlink()]


def pack_checkout(top, dest_tar):
    files = checkout_files(top)
    listing = Path(dest_tar).with_suffix(".list")
    listing.write_text("\n".join(files) + "\n")
    subprocess.run(["tar", "-C", str(top), "-cf", str(dest_tar), "--no-recursion", "-T", str(listing)],
                   check=True, capture_output=True)
    listing.unlink()
    return len(files)


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)
