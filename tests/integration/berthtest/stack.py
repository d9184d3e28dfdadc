"""The running berth stack, as the integration tests see it.

tools/dev-up installs berth under PREFIX (default /usr/local), makes sure a system dbus-daemon and
polkitd run, and activates the four services. The tests then drive the real thing: berthctl as root
and as real non-root users, busctl against the real bus, signals to the real processes.
"""
import json
import os
import pwd
import grp
import signal
import subprocess
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[3]
BUILD = Path(os.environ.get("BERTH_BUILD_DIR", TOP / "build"))  # where tools/dev-up builds
PREFIX = Path(os.environ.get("BERTH_PREFIX", "/usr/local"))
BERTHCTL = PREFIX / "bin" / "berthctl"
LIBEXEC = PREFIX / "libexec" / "berth"

SERVICES = {
    "broker": "org.berth.Broker1",
    "fetcher": "org.berth.Fetcher1",
    "unpacker": "org.berth.Unpacker1",
    "supervisor": "org.berth.Supervisor1",
}
INTERNAL = {k: v for k, v in SERVICES.items() if k != "broker"}
PATHS = {v: "/" + v.replace(".", "/") for v in SERVICES.values()}

MEMBER = "berth-test-member"      # in group berth: allowed by the shipped polkit rule
OUTSIDER = "berth-test-outsider"  # in no berth group: refused


def run(cmd, *, user=None, check=False, timeout=120, env=None, input=None):
    """Run a command (as `user` via runuser when given); return CompletedProcess with text output."""
    if user:
        cmd = ["runuser", "-u", user, "--"] + list(cmd)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, input=input)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed with {p.returncode}:\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def berthctl(*args, user=None, check=False, timeout=300, env=None, input=None):
    return run([str(BERTHCTL), "--no-ask-password", *args], user=user, check=check, timeout=timeout, env=env,
               input=input)


def busctl(*args, user=None, check=False, address=None, timeout=60):
    cmd = ["busctl"]
    cmd += [f"--address={address}"] if address else ["--system"]
    return run(cmd + list(args), user=user, check=check, timeout=timeout)


def bus_call(dest, path, iface, member, sig="", *args, user=None, address=None):
    return busctl("call", dest, path, iface, member, *([sig, *map(str, args)] if sig else []),
                  user=user, address=address)


def name_pid(name):
    """PID of the process owning `name` on the system bus, or None."""
    p = busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
               "GetConnectionUnixProcessID", "s", name)
    if p.returncode != 0:
        return None
    return int(p.stdout.split()[1])


def wait_for(predicate, timeout=15.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, IndexError):
        return False


def info_json(user=None):
    p = berthctl("--json", "info", user=user)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def ensure_user(name, groups=()):
    try:
        pwd.getpwnam(name)
    except KeyError:
        run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
    for g in groups:
        members = grp.getgrnam(g).gr_mem
        if name not in members:
            run(["usermod", "-a", "-G", g, name], check=True)


def dev_up():
    p = run([str(TOP / "tools" / "dev-up")], timeout=900)
    if p.returncode != 0:
        raise AssertionError(f"tools/dev-up failed:\n{p.stdout}\n{p.stderr}")


def dev_down():
    run([str(TOP / "tools" / "dev-down")], timeout=120)


def stop(*procs):
    """SIGKILL the process group of each Popen (started with start_new_session) and reap it."""
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
