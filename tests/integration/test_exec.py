"""berthctl exec, attach and top through the installed stack (CLI → broker → supervisor → shim), as root
and as a non-root member of group berth.

An exec'd process must have exactly the container init's confinement and must never see a host fd or
a host working directory (CVE-2016-9962, CVE-2019-5736, CVE-2024-21626); it is the shim's child, reaped
by it, and berthctl exec exits with its status.
"""
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from berthtest import stack
from berthtest.containers import berthctl, imported_busybox, ls, ok, state
from berthtest.terminal import Terminal

IMAGE = "localhost/berth-exec-test:latest"
MEMBER2 = "berth-test-exec-member2"
CONFINEMENT = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "Seccomp", "Seccomp_filters", "NoNewPrivs")


def container_pid(name, user=None):
    return ls(user)[name]["Pid"]


@pytest.fixture(scope="module")
def image(tmp_path_factory, member):
    with imported_busybox(tmp_path_factory, IMAGE):
        stack.ensure_user(MEMBER2, groups=["berth"])
        yield IMAGE


@pytest.fixture
def running(image, member):
    """A detached container running sleep, per user; removed afterwards."""
    made = []

    def make(name, user=None, *extra, cmd=("sleep", "1000")):
        ok(berthctl("run", "-d", "--name", name, *extra, image, *cmd, user=user))
        made.append((name, user))
        return name
    yield make
    for name, user in made:
        berthctl("rm", "-f", name)


def status_fields(text):
    return {k: v.strip() for k, v in (line.split(":", 1) for line in text.splitlines() if ":" in line)
            if k in CONFINEMENT}


@pytest.mark.parametrize("who", ["root", "member"])
def test_exec_has_exactly_the_inits_confinement(running, member, who):
    user = member if who == "member" else None
    name = running(f"exconf-{who}", user)
    p = ok(berthctl("exec", name, "sh", "-c",
                    "cat /proc/1/status; echo @@; cat /proc/self/status; echo @@; cat /proc/1/limits; echo @@;"
                    " cat /proc/self/limits; echo @@; cat /proc/1/cgroup; echo @@; cat /proc/self/cgroup; echo @@;"
                    " for n in cgroup ipc mnt net pid uts; do readlink /proc/1/ns/$n; readlink /proc/self/ns/$n; done",
                    user=user))
    init, me, init_lim, my_lim, init_cg, my_cg, ns = p.stdout.split("@@\n")
    a, b = status_fields(init), status_fields(me)
    assert a == b and a["Seccomp"] == "2" and a["NoNewPrivs"] == "1", (a, b)
    assert a["CapInh"] == a["CapAmb"] == "0000000000000000"
    assert init_lim == my_lim
    assert init_cg == my_cg
    links = ns.split()
    assert len(links) == 12 and all(links[i] == links[i + 1] for i in range(0, 12, 2)), links


def test_exec_sees_no_host_fd_and_no_host_cwd(running):
    name = running("exfd")
    p = ok(berthctl("exec", name, "ls", "/proc/self/fd"))
    # ls's own 0, 1, 2 and the directory it reads: nothing else.
    assert set(p.stdout.split()) <= {"0", "1", "2", "3"}, p.stdout
    assert ok(berthctl("exec", name, "readlink", "/proc/self/cwd")).stdout == "/\n"
    assert ok(berthctl("exec", "-w", "/tmp", name, "readlink", "/proc/self/cwd")).stdout == "/tmp\n"
    # From the host: a running exec'd process holds fds 0-2 only, and its cwd and root are the container's.
    ok(berthctl("exec", "-d", name, "sleep", "3131"))
    pid = stack.wait_for(lambda: next((d for d in os.listdir("/proc") if d.isdigit() and
                                       _cmdline(d) == "sleep 3131"), None), what="exec'd sleep")
    assert sorted(os.listdir(f"/proc/{pid}/fd"), key=int) == ["0", "1", "2"]
    for fd in ("0", "1", "2"):
        # The container's own null device, nothing of the host's.
        assert os.stat(f"/proc/{pid}/fd/{fd}").st_rdev == os.makedev(1, 3)
    init = container_pid(name)
    ident = lambda p: (os.stat(p).st_dev, os.stat(p).st_ino)  # noqa: E731
    assert ident(f"/proc/{pid}/root") == ident(f"/proc/{init}/root")
    assert ident(f"/proc/{pid}/cwd") == ident(f"/proc/{init}/root")


def test_exec_cwd_through_a_magic_link_is_refused(running):
    # CVE-2024-21626: a working directory of /proc/self/fd/N never leads out of the container.
    name = running("exleak")
    for n in range(3, 8):
        p = berthctl("exec", "-w", f"/proc/self/fd/{n}", name, "readlink", "/proc/self/cwd")
        assert p.returncode == 126 and "working directory" in p.stderr, p


def _ppid(pid):
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _pipes_of(pid):
    """The pipes process pid holds open (as the host sees its fds)."""
    held = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("pipe:"):
            held.append(target)
    return sorted(held)


def test_every_exec_ends_and_the_shim_keeps_no_status_fd(running):
    # A process that fails before execve (the refused cwd) or execs and exits at once could be reaped
    # before the shim knew its pid: its status was never written and the shim kept the status pipe's
    # writer, so berthctl waited for EOF forever. Several at once, so that the joiner is preempted.
    name = running("exstatusfd")
    shim = _ppid(container_pid(name))
    before = _pipes_of(shim)

    def one(i):
        if i % 2:
            return berthctl("exec", "-w", "/proc/self/fd/3", name, "readlink", "/proc/self/cwd", timeout=60)
        return berthctl("exec", name, "true", timeout=60)

    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(one, range(40)))
    for i, p in enumerate(done):
        if i % 2:
            assert p.returncode == 126 and "working directory" in p.stderr, p
        else:
            ok(p)
    # Each berthctl returned once it read its status to EOF: the shim holds no writer of any of them.
    assert _pipes_of(shim) == before


def _cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return None


@pytest.mark.parametrize("who", ["root", "member"])
def test_exec_user_env_workdir(running, member, who):
    user = member if who == "member" else None
    name = running(f"exuser-{who}", user)
    p = ok(berthctl("exec", "-u", "nobody", "-e", "FOO=bar baz", "-e", "PATH=/bin", "-w", "/tmp", name, "sh",
                    "-c", 'id -u; id -g; echo "$FOO"; echo "$PATH"; pwd; echo "$HOME"', user=user))
    assert p.stdout.split("\n")[:6] == ["65534", "65534", "bar baz", "/bin", "/tmp", "/nonexistent"], p.stdout
    p = ok(berthctl("exec", "-u", "65534:0", name, "id", user=user))
    assert "uid=65534" in p.stdout and "gid=0" in p.stdout, p.stdout
    p = berthctl("exec", "-u", "nosuchuser", name, "true", user=user)
    assert p.returncode == 125 and "nosuchuser" in p.stderr, p.stderr


@pytest.mark.parametrize("who", ["root", "member"])
@pytest.mark.parametrize("cmd,status", [
    (["true"], 0),
    (["sh", "-c", "exit 3"], 3),
    (["/etc/passwd"], 126),
    (["/nonexistent"], 127),
    (["nosuchcommand"], 127),
    (["sh", "-c", "kill -9 $$"], 128 + 9),
])
def test_exec_exit_status(running, member, who, cmd, status):
    user = member if who == "member" else None
    name = running(f"exst-{who}-{status}-{len(cmd)}", user)
    p = berthctl("exec", name, *cmd, user=user)
    assert p.returncode == status, p.stderr


def test_exec_stdio_and_stdin(running, member):
    name = running("exio", member)
    p = ok(berthctl("exec", "-i", name, "sh", "-c", "cat; echo err >&2", user=member, input="typed\n"))
    assert p.stdout == "typed\n" and p.stderr == "err\n", p
    # Without -i, stdin is the container's /dev/null.
    assert ok(berthctl("exec", name, "cat", user=member, input="nothing\n")).stdout == ""


def test_exec_with_a_pty(running, member):
    name = running("expty", member)
    t = Terminal([str(stack.BERTHCTL), "--no-ask-password", "exec", "-t", "-i", name, "sh", "-c",
                  "tty; read line; echo got:$line; exit 4"], user=member)
    t.expect(b"/dev/pts/")
    t.type(b"typed\r")
    assert t.finish() == 4, t.output
    assert re.search(rb"/dev/pts/\d+", t.output) and b"got:typed" in t.output, t.output


def test_member_cannot_exec_into_another_users_container(running, member):
    name = running("exother", MEMBER2)
    p = berthctl("exec", name, "true", user=member)
    assert p.returncode == 125 and "org.berth.container-manage-any" in p.stderr, p.stderr
    p = berthctl("top", name, user=member)
    assert p.returncode != 0 and "org.berth.container-manage-any" in p.stderr, p.stderr
    p = berthctl("attach", name, user=member)
    assert p.returncode != 0 and "org.berth.container-manage-any" in p.stderr, p.stderr
    # Root may.
    ok(berthctl("exec", name, "true"))


def test_exec_into_a_stopped_container_is_refused(image):
    ok(berthctl("run", "--name", "exstopped", image, "true"))
    try:
        p = berthctl("exec", "exstopped", "true")
        assert p.returncode == 125 and "not running" in p.stderr, p.stderr
    finally:
        berthctl("rm", "-f", "exstopped")


def test_top_lists_init_and_exec_with_both_pids_and_the_shim_reaps(running, member):
    name = running("extop", member)
    ok(berthctl("exec", "-d", name, "sleep", "4242", user=member))
    stack.wait_for(lambda: "sleep 4242" in berthctl("top", name, user=member).stdout, what="exec in top")
    lines = ok(berthctl("top", name, user=member)).stdout.splitlines()
    assert lines[0].split() == ["PID", "CPID", "UID", "COMMAND"]
    rows = {" ".join(l.split()[3:]): l.split()[:3] for l in lines[1:]}
    init = container_pid(name, member)
    assert rows["sleep 1000"] == [str(init), "1", "0"], rows
    host, cpid, _ = rows["sleep 4242"]
    assert int(cpid) > 1 and int(host) != init
    # The exec'd process is the shim's child (the init's parent), and none is left a zombie.
    shim = int(Path(f"/proc/{init}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert int(Path(f"/proc/{host}/stat").read_text().rsplit(")", 1)[1].split()[1]) == shim
    for _ in range(3):
        ok(berthctl("exec", name, "true", user=member))
    children = subprocess.run(["ps", "-o", "pid=,stat=", "--ppid", str(shim)], capture_output=True,
                              text=True).stdout.split("\n")
    assert not [c for c in children if c.strip().endswith("Z")], children


def test_top_shows_a_containers_command_line_escaped(running):
    # A command line is the container's to choose: a C1 CSI (valid UTF-8, so it crosses D-Bus) must not
    # reach the terminal raw.
    name = running("extopesc")
    ok(berthctl("exec", "-d", name, "sh", "-c", "sleep 4244; true", "\u009b31mX"))
    stack.wait_for(lambda: "sleep 4244" in berthctl("top", name).stdout, what="exec in top")
    out = ok(berthctl("top", name)).stdout
    assert "\u009b" not in out and "\\xc2\\x9b31mX" in out, out


def test_attach_sees_output_and_detaching_leaves_it_running(running, member):
    name = running("exatt", member, "-t", cmd=("sh", "-c", "while read l; do echo got:$l; done"))
    t = Terminal([str(stack.BERTHCTL), "--no-ask-password", "attach", name], user=member)
    t.type(b"hello\r")
    t.expect(b"got:hello")
    t.type(b"\x10\x11")  # ctrl-p ctrl-q
    assert t.finish(30) == 0, t.output
    assert ls(member)[name]["Status"] == "running"
    # The log still has what went through the terminal.
    stack.wait_for(lambda: "got:hello" in berthctl("logs", name, user=member).stdout, what="log")


def test_attach_gives_the_container_terminal_the_attaching_terminals_size(running, member):
    name = running("exatsize", member, "-t", cmd=("sh", "-c", "while true; do stty size; sleep 0.2; done"))
    t = Terminal([str(stack.BERTHCTL), "--no-ask-password", "attach", name], user=member, size=(41, 131))
    t.expect(b"41 131")
    t.type(b"\x10\x11")  # ctrl-p ctrl-q
    assert t.finish(30) == 0, t.output
    assert state(name, member)["Status"] == "running"


def test_attach_needs_a_detached_tty_container(running):
    name = running("exnotty")
    p = berthctl("attach", name)
    assert p.returncode != 0 and "no terminal" in p.stderr, p.stderr


# ---- health checks (through the exec path) -----------------------------------------------------------

def health_of(name, user=None):
    return state(name, user)["Health"]


def status_of(name, user=None):
    return ls(user)[name]


@pytest.mark.parametrize("who", ["root", "member"])
def test_health_check_healthy_then_unhealthy_after_retries(running, member, who):
    user = member if who == "member" else None
    name = running(f"exhealth-{who}", user, "--health-cmd", "cat /tmp/ok", "--health-interval", "200ms",
                   "--health-retries", "3", cmd=("sh", "-c", "touch /tmp/ok; exec sleep 1000"))
    assert health_of(name, user) in ("starting", "healthy")
    stack.wait_for(lambda: health_of(name, user) == "healthy", timeout=30, what="healthy")
    assert "(healthy)" in ok(berthctl("ls", user=user)).stdout
    assert status_of(name, user)["Health"] == "healthy"
    ok(berthctl("exec", name, "rm", "/tmp/ok", user=user))
    stack.wait_for(lambda: health_of(name, user) == "unhealthy", timeout=30, what="unhealthy")
    # on_failure none: it keeps running; a passing check makes it healthy again.
    assert status_of(name, user)["Status"] == "running"
    ok(berthctl("exec", name, "touch", "/tmp/ok", user=user))
    stack.wait_for(lambda: health_of(name, user) == "healthy", timeout=30, what="healthy again")


def test_health_on_failure_kill_stops_it(running):
    name = running("exhealthkill", None, "--health-cmd", "false", "--health-interval", "200ms",
                   "--health-retries", "2", "--health-on-failure", "kill")
    stack.wait_for(lambda: status_of(name)["Status"] == "stopped", timeout=30, what="killed when unhealthy")
    assert status_of(name)["ExitCode"] == 137


def test_health_check_timeout_counts_as_failure(running):
    name = running("exhealthslow", None, "--health-cmd", "sleep 100", "--health-interval", "200ms",
                   "--health-timeout", "300ms", "--health-retries", "1")
    stack.wait_for(lambda: health_of(name) == "unhealthy", timeout=30, what="unhealthy by timeout")
    # Each timed-out check was killed: never more than the one running now.
    assert ok(berthctl("top", name)).stdout.count("sleep 100") <= 1


def test_bad_health_options_are_refused(image):
    p = berthctl("run", "--rm", "--health-interval", "1ms", "--health-cmd", "true", image, "true")
    assert p.returncode == 125 and "health.interval_ms" in p.stderr, p.stderr
    p = berthctl("run", "--rm", "--health-on-failure", "explode", image, "true")
    assert p.returncode != 0 and "invalid --health-on-failure" in p.stderr, p.stderr


def test_exec_never_runs_a_host_binary_in_the_container(running):
    """CVE-2019-5736: an exec'd "#!/proc/self/exe" runs the process's own image inside the container:
    that must be the shim's sealed memfd copy, never the host's berth-shim file."""
    import hashlib
    name = running("exseal")
    init = container_pid(name)
    shim = int(Path(f"/proc/{init}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert os.readlink(f"/proc/{shim}/exe").startswith("/memfd:berth-shim"), os.readlink(f"/proc/{shim}/exe")
    host = stack.LIBEXEC / "berth-shim"
    before = hashlib.sha256(host.read_bytes()).hexdigest() if host.exists() else None
    ok(berthctl("exec", name, "sh", "-c", "printf '#!/proc/self/exe\\n' > /tmp/s; chmod +x /tmp/s"))
    p = berthctl("exec", name, "/tmp/s")
    # The sealed shim ran (its usage, exit 2) and wrote nothing anywhere.
    assert p.returncode == 2, p
    if before:
        assert hashlib.sha256(host.read_bytes()).hexdigest() == before


def test_health_survives_a_supervisor_restart_and_exec_still_works(running):
    import signal
    name = running("exhealthrestart", None, "--health-cmd", "false", "--health-interval", "200ms",
                   "--health-retries", "2")
    stack.wait_for(lambda: health_of(name) == "unhealthy", timeout=30, what="unhealthy")
    sup = stack.name_pid("org.berth.Supervisor1")
    assert sup
    os.kill(sup, signal.SIGKILL)
    stack.wait_for(lambda: not stack.pid_alive(sup), what="supervisor gone")
    # The next call brings it back; it re-reads the health state with the container and goes on checking.
    assert status_of(name)["Status"] == "running"
    stack.wait_for(lambda: health_of(name) == "unhealthy", timeout=30, what="unhealthy after the restart")
    # The re-adopted shim (started from the sealed copy of the earlier supervisor) still runs execs.
    assert ok(berthctl("exec", name, "echo", "again")).stdout == "again\n"
