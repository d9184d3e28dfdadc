"""The shim's spare joiner (services/shim/shim-spare.c) and Manager.ExecContainer, as root and as a member.

After an exec the shim keeps one joiner that already joined the init's cgroup and namespaces, so that the
next exec does not wait for the cgroup attach. The exec it serves must be exactly what a fresh joiner
gives (the init's confinement, cgroups and namespaces); the spare itself is not a process of the
container (not in its pid namespace, not in top) and leaves with the container.
"""
import os
import subprocess
from pathlib import Path

import pytest

from berthtest import stack
from berthtest.containers import berthctl, imported_busybox, ls, ok

IMAGE = "localhost/berth-exec-spare-test:latest"
CONFINEMENT = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "Seccomp", "Seccomp_filters", "NoNewPrivs")


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    with imported_busybox(tmp_path_factory, IMAGE):
        yield IMAGE


@pytest.fixture
def running(image):
    made = []

    def make(name, user=None):
        ok(berthctl("run", "-d", "--name", name, image, "sleep", "1000", user=user))
        made.append(name)
        return name
    yield make
    for name in made:
        berthctl("rm", "-f", name)


def _stat(pid):
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _status(pid):
    return dict(l.split(":", 1) for l in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in l)


def _spares(shim, init):
    """The shim's children other than the init and the exec'd processes: pids not in the container's pid
    namespace (NSpid has one level)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(shim)], capture_output=True, text=True).stdout
    found = []
    for pid in (int(p) for p in out.split() if int(p) != init):
        try:
            if _stat(pid)[0] != "Z" and len(_status(pid).get("NSpid", "").split()) == 1:
                found.append(pid)
        except OSError:
            pass  # gone meanwhile
    return found


def _one_spare(shim, init):
    """The spare, once it is the only one (a joiner or a used spare may still be on its way out)."""
    return stack.wait_for(lambda: (lambda s: s[0] if len(s) == 1 else None)(_spares(shim, init)),
                          what="one spare joiner")


@pytest.mark.parametrize("who", ["root", "member"])
def test_an_exec_through_the_spare_has_exactly_the_inits_confinement(running, member, who):
    user = member if who == "member" else None
    name = running(f"exspare-{who}", user)
    init = ls(user)[name]["Pid"]
    shim = int(_stat(init)[1])
    # The first exec leaves a spare joiner behind: in the init's cgroups, not in its pid namespace.
    ok(berthctl("exec", name, "true", user=user))
    spare = _one_spare(shim, init)
    assert Path(f"/proc/{spare}/cgroup").read_text() == Path(f"/proc/{init}/cgroup").read_text()
    for ns in ("cgroup", "ipc", "mnt", "net", "uts"):
        assert os.readlink(f"/proc/{spare}/ns/{ns}") == os.readlink(f"/proc/{init}/ns/{ns}"), ns
    assert str(spare) not in berthctl("top", name, user=user).stdout.split()
    # The next exec is the spare's: the same confinement, cgroups and namespaces as the init.
    p = ok(berthctl("exec", name, "sh", "-c",
                    "cat /proc/1/status; echo @@; cat /proc/self/status; echo @@; cat /proc/1/cgroup; echo @@;"
                    " cat /proc/self/cgroup; echo @@; for n in cgroup ipc mnt net pid uts; do readlink"
                    " /proc/1/ns/$n; readlink /proc/self/ns/$n; done; echo @@; ls /proc/self/fd",
                    user=user))
    init_st, me, init_cg, my_cg, ns, fds = p.stdout.split("@@\n")
    fields = lambda t: {k: v.strip() for k, v in (l.split(":", 1) for l in t.splitlines() if ":" in l)  # noqa: E731
                        if k in CONFINEMENT}
    assert fields(init_st) == fields(me) and fields(me)["Seccomp"] == "2", (init_st, me)
    assert init_cg == my_cg
    links = ns.split()
    assert len(links) == 12 and all(links[i] == links[i + 1] for i in range(0, 12, 2)), links
    assert set(fds.split()) <= {"0", "1", "2", "3"}, fds
    # That spare served the exec and is gone; a new one waits.
    stack.wait_for(lambda: not Path(f"/proc/{spare}").exists(), what="the used spare to exit")
    assert _one_spare(shim, init) != spare


def test_the_spare_leaves_with_the_container(running):
    name = running("exspare-stop")
    init = ls()[name]["Pid"]
    shim = int(_stat(init)[1])
    ok(berthctl("exec", name, "true"))
    spare = _one_spare(shim, init)
    ok(berthctl("stop", "-t", "1", name))
    stack.wait_for(lambda: not Path(f"/proc/{spare}").exists(), what="the spare to go with the container")
    ok(berthctl("rm", name))


def test_exec_by_an_unknown_name_is_not_found(image, member):
    for user in (None, member):
        p = berthctl("exec", "exspare-nope", "true", user=user)
        assert p.returncode == 125 and "No container 'exspare-nope'" in p.stderr, p


def test_an_exec_after_a_policy_restart_joins_the_new_init(image):
    """The supervisor caches each container's parsed spec and seccomp programs for exec
    (services/supervisor/exec-base.c), keyed to its config.json and its init: after the restart policy
    started a new init, an exec joins the new init's namespaces and cgroup with its confinement."""
    name = "exspare-restart"
    ok(berthctl("run", "-d", "--restart", "on-failure:1", "--name", name, image, "sleep", "1000"))
    try:
        old = ls()[name]["Pid"]
        ok(berthctl("exec", name, "true"))  # fills the cache (and leaves a spare)
        os.kill(old, 9)  # a failure: the policy restarts it
        new = stack.wait_for(lambda: (lambda c: c["Status"] == "running" and c["Pid"] not in (0, old) and c["Pid"])(
            ls()[name]), timeout=60, what="the restarted init")
        p = ok(berthctl("exec", name, "sh", "-c", "for n in pid mnt net; do readlink /proc/self/ns/$n; done; "
                        "echo @@; cat /proc/1/cgroup; echo @@; cat /proc/self/cgroup; echo @@; cat /proc/self/status"))
        ns, init_cg, my_cg, me = p.stdout.split("@@\n")
        assert ns.split() == [os.readlink(f"/proc/{new}/ns/{n}") for n in ("pid", "mnt", "net")], ns
        assert init_cg == my_cg
        mine = {k: v.strip() for k, v in (l.split(":", 1) for l in me.splitlines() if ":" in l)}
        init = {k: v.strip() for k, v in _status(new).items()}
        assert {k: mine[k] for k in CONFINEMENT} == {k: init[k] for k in CONFINEMENT}, (mine, init)
    finally:
        berthctl("rm", "-f", name)
