"""A foreground run, an exec and an attach as a person at a terminal uses them, through the installed
stack, as root and as a member of group berth (issue 9):

- a foreground `run` (with and without -t) is logged as a detached one is: the container writes into its
  shim, which copies to the client and writes the log; a client that goes away does not stop the output;
- `exec` forwards the signals berthctl receives to the exec'd process (docker's sig-proxy);
- the terminal's window size follows the client's after the start (attach, run -t, exec -t).
"""
import fcntl
import os
import signal
import struct
import subprocess
import termios

import pytest

from berthtest import stack
from berthtest.containers import berthctl, imported_busybox, ls, ok
from berthtest.terminal import Terminal

IMAGE = "localhost/berth-fgio-test:latest"
WHO = ["root", "member"]


@pytest.fixture(scope="module")
def image(tmp_path_factory, member):
    with imported_busybox(tmp_path_factory, IMAGE):
        yield IMAGE


@pytest.fixture
def names():
    made = []
    yield made
    for name, user in made:
        berthctl("rm", "-f", name, user=user)


def user_of(who, member):
    return member if who == "member" else None


def berthctl_pid(proc):
    """The pid of berthctl itself: proc, or its child when it runs under runuser."""
    if os.path.basename(os.readlink(f"/proc/{proc.pid}/exe")) == "berthctl":
        return proc.pid
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[1]) == proc.pid and "(berthctl)" in stat:
                return int(d)
    raise AssertionError(f"no berthctl under {proc.pid}")


def popen(*args, user=None):
    cmd = [str(stack.BERTHCTL), "--no-ask-password", *args]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def resize(t, rows, cols):
    """What a terminal emulator does when its window changes: the pty's size, then SIGWINCH to the
    program on it (ours is not the controlling terminal of berthctl's session: we send it ourselves)."""
    fcntl.ioctl(t.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    os.kill(berthctl_pid(t.proc), signal.SIGWINCH)


# ---- logs of a foreground run -------------------------------------------------------------------------

@pytest.mark.parametrize("who", WHO)
def test_logs_of_a_foreground_run_have_its_output_by_stream(image, member, names, who):
    user = user_of(who, member)
    name = f"fglog-{who}"
    names.append((name, user))
    p = berthctl("run", "--name", name, image, "sh", "-c", "echo out1; echo err1 >&2; echo out2; exit 3",
                 user=user)
    assert p.returncode == 3, p.stderr
    assert p.stdout == "out1\nout2\n"
    assert p.stderr == "err1\n"
    logs = ok(berthctl("logs", name, user=user))
    assert logs.stdout == "out1\nout2\n"
    assert logs.stderr == "err1\n"


@pytest.mark.parametrize("who", WHO)
def test_logs_of_a_foreground_tty_run_have_its_output(image, member, names, who):
    user = user_of(who, member)
    name = f"fgtty-{who}"
    names.append((name, user))
    t = Terminal([str(stack.BERTHCTL), "--no-ask-password", "run", "--name", name, "-t", image, "sh", "-c",
                  "echo tty-out; echo tty-err >&2; exit 4"], user=user, size=(30, 90))
    assert t.finish() == 4, t.output
    assert b"tty-out" in t.output and b"tty-err" in t.output, t.output
    logs = ok(berthctl("logs", name, user=user))
    # One stream: both went to the terminal.
    assert logs.stdout.splitlines() == ["tty-out", "tty-err"], logs.stdout
    assert logs.stderr == ""


def test_foreground_run_passes_stdin_and_all_of_a_large_output(image, names):
    name = "fgbig"
    names.append((name, None))
    data = "".join(f"line {i}\n" for i in range(60000))
    p = berthctl("run", "-i", "--name", name, image, "cat", input=data)
    assert p.returncode == 0, p.stderr
    assert p.stdout == data
    logs = ok(berthctl("logs", "--tail", "1", name))
    assert logs.stdout == "line 59999\n"


def test_a_killed_client_does_not_stop_the_containers_output(image, names):
    name = "fgkilled"
    names.append((name, None))
    proc = popen("run", "--name", name, image, "sh", "-c",
                 "echo ready; while [ ! -e /tmp/go ]; do sleep 0.1; done; seq 1 50000; echo done")
    assert proc.stdout.readline() == b"ready\n"
    proc.kill()
    proc.wait()
    # Its output goes on (into the log) although nobody reads the client's pipes any more.
    ok(berthctl("exec", name, "touch", "/tmp/go"))
    assert ok(berthctl("wait", name)).stdout.strip() == "0"
    logs = ok(berthctl("logs", "--tail", "2", name))
    assert logs.stdout == "50000\ndone\n", logs.stdout


# ---- exec forwards signals ----------------------------------------------------------------------------

@pytest.mark.parametrize("who", WHO)
def test_exec_forwards_sigterm_to_the_process(image, member, names, who):
    user = user_of(who, member)
    name = f"fgsig-{who}"
    names.append((name, user))
    ok(berthctl("run", "-d", "--name", name, image, "sleep", "1000", user=user))
    proc = popen("exec", name, "sh", "-c",
                 "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done", user=user)
    assert proc.stdout.readline() == b"ready\n"
    os.kill(berthctl_pid(proc), signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 7, (out, err)
    assert out == b"got-term\n"


def test_kill_exec_refuses_a_pid_that_is_not_an_exec(image, names):
    name = "fgsigpid"
    names.append((name, None))
    ok(berthctl("run", "-d", "--name", name, image, "sleep", "1000"))
    c = ls()[name]
    cid, init = c["Id"], c["Pid"]
    for pid in (init, os.getpid()):
        p = stack.busctl("call", "org.berth.Broker1", f"/org/berth/Broker1/container/{cid}",
                         "org.berth.Broker1.Container", "KillExec", "uit", str(pid), "9", "0")
        assert p.returncode != 0 and "no such exec'd process" in p.stderr, p.stderr
    assert ok(berthctl("exec", name, "true")).returncode == 0  # the init is alive


# ---- window size after the start ----------------------------------------------------------------------

@pytest.mark.parametrize("who", WHO)
def test_a_resize_after_attach_reaches_stty_size(image, member, names, who):
    user = user_of(who, member)
    name = f"fgwinch-{who}"
    names.append((name, user))
    ok(berthctl("run", "-d", "-t", "--name", name, image, "sh", "-c",
                "while true; do stty size; sleep 0.2; done", user=user))
    t = Terminal([str(stack.BERTHCTL), "--no-ask-password", "attach", name], user=user, size=(41, 131))
    t.expect(b"41 131")
    resize(t, 50, 97)
    t.expect(b"50 97")
    t.type(b"\x10\x11")  # ctrl-p ctrl-q
    assert t.finish(30) == 0, t.output


@pytest.mark.parametrize("how", ["run", "exec"])
def test_a_resize_reaches_the_terminal_of_run_t_and_exec_t(image, names, how):
    # Ends once the size changed (it would loop for ever otherwise, and the test time out).
    script = 'stty size; while [ "$(stty size)" = "33 101" ]; do sleep 0.1; done; stty size; exit 6'
    if how == "run":
        cmd = ["run", "--rm", "-t", "-i", image, "sh", "-c", script]
    else:
        names.append(("fgwinch-exec", None))
        ok(berthctl("run", "-d", "--name", "fgwinch-exec", image, "sleep", "1000"))
        cmd = ["exec", "-t", "-i", "fgwinch-exec", "sh", "-c", script]
    t = Terminal([str(stack.BERTHCTL), "--no-ask-password", *cmd], size=(33, 101))
    t.expect(b"33 101")
    resize(t, 44, 120)
    t.expect(b"44 120")
    assert t.finish() == 6, t.output
