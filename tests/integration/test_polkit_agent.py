"""berthctl's own polkit agent (cli/polkit-agent.c): on a terminal, a call polkit wants to ask about
starts pkttyagent for berthctl's process and is repeated, so an administrator is asked for a password
instead of being refused; nothing else starts an agent.

Real polkitd, real pkttyagent, real users on a pseudo-terminal that is their controlling terminal.
Each berthctl runs in a private mount namespace where /usr/bin/pkttyagent is a wrapper that writes
down who started it (its parent's pid and name, its own pid, its arguments) and then execs the real
agent: so a test sees whether berthctl started an agent, and which.
"""
import os
import re
import shlex
import shutil
import tempfile
import termios
import time
import uuid
from pathlib import Path

import pytest

from berthtest import stack
from berthtest.containers import imported_busybox
from berthtest.fixtures import *  # noqa: F401,F403
from berthtest.stack import berthctl
from berthtest.terminal import Terminal

# The polkit matrix's administrator (group sudo: Debian's polkit admin identity). The only member of
# sudo among the test users, so the agent asks for this one's password without a choice of identity.
ADMIN = "berth-test-pkadmin"
PASSWORD = "agent-" + uuid.uuid4().hex[:12]
IMAGE = "localhost/berth-agent:latest"
AGENT = "/usr/bin/pkttyagent"


@pytest.fixture(scope="module")
def admin():
    stack.ensure_user(ADMIN, groups=["sudo"])
    stack.run(["chpasswd"], input=f"{ADMIN}:{PASSWORD}\n", check=True)
    return ADMIN


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    with imported_busybox(tmp_path_factory, IMAGE):
        yield IMAGE


@pytest.fixture
def tagged(image):
    """A fresh tag of the image, for one test to remove; gone afterwards whatever happened."""
    ref = f"localhost/berth-agent-rm:{uuid.uuid4().hex[:8]}"
    p = berthctl("images", "tag", image, ref)
    assert p.returncode == 0, p.stderr
    yield ref
    berthctl("images", "rm", ref)


def image_listed(ref):
    return ref in berthctl("images", "ls").stdout


class AgentWatch:
    """A directory readable by the test users holding the wrapper and its log, and the command line that
    runs something as a user with /usr/bin/pkttyagent replaced (by the wrapper, a non-executable file, or
    one that fails) in a private mount namespace."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="berth-agent-", dir="/tmp"))
        self.dir.chmod(0o755)
        self.log = self.dir / "started"
        self.log.touch()
        self.log.chmod(0o666)
        self.real = self.dir / "real-pkttyagent"
        self.real.touch()
        wrapper = self.dir / "pkttyagent"
        wrapper.write_text("#!/bin/sh\n"
                           f'echo "$PPID $(cat /proc/$PPID/comm) $$ $*" >>{self.log}\n'
                           f'exec {self.real} "$@"\n')
        wrapper.chmod(0o755)
        (self.dir / "not-executable").write_text("")
        (self.dir / "not-executable").chmod(0o644)
        (self.dir / "failing").write_text("#!/bin/sh\n"
                                          f'echo "$PPID $(cat /proc/$PPID/comm) $$ $*" >>{self.log}\n'
                                          "exit 1\n")
        (self.dir / "failing").chmod(0o755)

    def command(self, user, args, agent="pkttyagent"):
        inner = (f"mount --bind {AGENT} {self.real} && mount --bind {self.dir / agent} {AGENT} && "
                 f"exec runuser -u {user} -- {shlex.join([str(stack.BERTHCTL), *args])}")
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner]

    def started(self):
        """[(parent pid, parent name, agent pid, arguments)] of every agent started so far."""
        out = []
        for line in self.log.read_text().splitlines():
            ppid, comm, pid, args = line.split(" ", 3)
            out.append((int(ppid), comm, int(pid), args))
        return out

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def watch():
    w = AgentWatch()
    yield w
    w.close()


def answer(term, text):
    """Wait for the password prompt and type text. pkttyagent prints the prompt and then turns echo off
    with TCSAFLUSH, which drops what was typed before: type only once echo is off."""
    term.expect(b"Password:")
    deadline = time.monotonic() + 60
    while termios.tcgetattr(term.master)[3] & termios.ECHO:
        assert time.monotonic() < deadline, term.output
        time.sleep(0.01)
    term.type(text.encode() + b"\n")


def only_agent_of_berthctl(watch):
    """The one agent started: by berthctl, for berthctl's own process."""
    started = watch.started()
    assert len(started) == 1, started
    ppid, comm, pid, args = started[0]
    assert comm == "berthctl", started
    m = re.fullmatch(r"--notify-fd (\d+) --process (\d+)(?:,\d+)?", args)
    assert m and int(m.group(2)) == ppid, args
    return ppid, pid


def test_admin_on_a_terminal_is_asked_by_berthctls_agent(admin, tagged, watch):
    term = Terminal(watch.command(admin, ["images", "rm", tagged]), controlling=True)
    answer(term, PASSWORD)
    status = term.finish()
    text = term.output.decode(errors="replace")
    assert "AUTHENTICATING FOR org.berth.image-remove" in text, text
    assert status == 0, text
    assert not image_listed(tagged)
    berthctl_pid, agent_pid = only_agent_of_berthctl(watch)
    # berthctl stopped its agent before it exited.
    assert not stack.pid_alive(agent_pid)
    assert not stack.pid_alive(berthctl_pid)


def test_wrong_password_is_refused_clearly(admin, tagged, watch):
    term = Terminal(watch.command(admin, ["images", "rm", tagged]), controlling=True)
    answer(term, "not-" + PASSWORD)
    status = term.finish()
    text = term.output.decode(errors="replace")
    assert status != 0, text
    assert ("berthctl: images rm: permission denied: Not authorized: polkit action 'org.berth.image-remove' "
            "was denied.") in text, text
    assert image_listed(tagged)
    only_agent_of_berthctl(watch)


def test_no_ask_password_starts_no_agent(admin, tagged, watch):
    term = Terminal(watch.command(admin, ["--no-ask-password", "images", "rm", tagged]), controlling=True)
    status = term.finish()
    text = term.output.decode(errors="replace")
    assert status != 0, text
    assert "permission denied: Interactive authentication required for 'org.berth.image-remove'" in text, text
    assert "Password:" not in text
    assert watch.started() == []
    assert image_listed(tagged)


def test_without_a_terminal_no_agent_is_started(admin, tagged, watch):
    p = stack.run(watch.command(admin, ["images", "rm", tagged]), input="")
    assert p.returncode != 0, p.stderr
    assert "permission denied: Interactive authentication required for 'org.berth.image-remove'" in p.stderr, \
        p.stderr
    assert watch.started() == []
    assert image_listed(tagged)


def test_member_allowed_action_on_a_terminal_starts_no_agent(member, image, watch):
    """The shipped rule grants a member info: the call passes on its first try, no agent is started."""
    term = Terminal(watch.command(member, ["images", "ls"]), controlling=True)
    status = term.finish()
    text = term.output.decode(errors="replace")
    assert status == 0, text
    assert image in text, text
    assert watch.started() == []


@pytest.mark.parametrize("agent", ["not-executable", "failing"])
def test_missing_or_broken_agent_leaves_the_refusal_as_before(admin, tagged, watch, agent):
    """pkttyagent not installed (not executable for the user) or failing at once: berthctl goes on
    without an agent, and the call is refused as it was before berthctl had one."""
    term = Terminal(watch.command(admin, ["images", "rm", tagged], agent=agent), controlling=True)
    status = term.finish()
    text = term.output.decode(errors="replace")
    assert status != 0, text
    assert "berthctl: images rm: permission denied: Not authorized: polkit action 'org.berth.image-remove'" in \
        text, text
    assert "Password:" not in text
    assert len(watch.started()) == (1 if agent == "failing" else 0), watch.started()
    assert image_listed(tagged)


def test_agent_goes_when_berthctl_is_killed(admin, tagged, watch):
    """SIGKILL while the agent asks: the kernel's parent-death signal ends the agent too."""
    term = Terminal(watch.command(admin, ["images", "rm", tagged]), controlling=True)
    term.expect(b"Password:")
    berthctl_pid, agent_pid = only_agent_of_berthctl(watch)
    assert stack.pid_alive(agent_pid)
    os.kill(berthctl_pid, 9)
    stack.wait_for(lambda: not stack.pid_alive(agent_pid), timeout=30, what="the agent to end")
    term.finish()
    assert image_listed(tagged)


def answer_every_prompt(term, text, timeout=180):
    """Answer each password prompt until the terminal closes; the number answered."""
    answered, deadline = 0, time.monotonic() + timeout
    while time.monotonic() < deadline and term._read(1):
        if term.output.count(b"Password:") > answered:
            while termios.tcgetattr(term.master)[3] & termios.ECHO and time.monotonic() < deadline:
                time.sleep(0.01)
            term.type(text.encode() + b"\n")
            answered += 1
    return answered


def test_admin_runs_and_execs_through_the_agent(admin, image, watch):
    """The front binary's own path (exec, linked without GLib) asks through the agent too: the
    administrator starts a container (container-run, container-manage) and execs in it, answering
    each prompt."""
    name = f"berth-agent-{uuid.uuid4().hex[:8]}"
    try:
        term = Terminal(watch.command(admin, ["run", "-d", "--name", name, image, "sleep", "600"]),
                        controlling=True)
        assert answer_every_prompt(term, PASSWORD) >= 1, term.output
        assert term.finish() == 0, term.output
        term = Terminal(watch.command(admin, ["exec", name, "echo", "said-inside"]), controlling=True)
        assert answer_every_prompt(term, PASSWORD) >= 1, term.output
        text = term.output.decode(errors="replace")
        assert term.finish() == 0, text
        assert "AUTHENTICATING FOR org.berth.container-manage" in text, text
        assert "said-inside" in text, text
        assert all(comm == "berthctl" for _, comm, _, _ in watch.started()), watch.started()
    finally:
        berthctl("rm", "-f", name)


def test_admin_runs_in_the_foreground_and_inspects_through_the_agent(admin, image, watch):
    """The calls made after the first one go through the agent as well: a foreground run (CreateContainer,
    then Start from the attach loop) and inspect (GetContainer, then the properties, GetSpec and
    GetNetwork), each answered on the terminal."""
    name = f"berth-agent-fg-{uuid.uuid4().hex[:8]}"
    try:
        term = Terminal(watch.command(admin, ["run", "--name", name, image, "echo", "said-in-front"]),
                        controlling=True)
        assert answer_every_prompt(term, PASSWORD) >= 1, term.output
        text = term.output.decode(errors="replace")
        assert term.finish() == 0, text
        assert "said-in-front" in text, text
        term = Terminal(watch.command(admin, ["inspect", name]), controlling=True)
        assert answer_every_prompt(term, PASSWORD) >= 1, term.output
        text = term.output.decode(errors="replace")
        assert term.finish() == 0, text
        # The properties (GetAll), the spec (GetSpec, not its error) and the network (GetNetwork).
        assert re.search(rf'"Name"\s*:\s*"{name}"', text), text
        assert re.search(r'"Spec"\s*:\s*\{', text) and '"SpecError"' not in text, text
        assert re.search(r'"NetworkSettings"\s*:', text), text
        assert all(comm == "berthctl" for _, comm, _, _ in watch.started()), watch.started()
    finally:
        berthctl("rm", "-f", name)
