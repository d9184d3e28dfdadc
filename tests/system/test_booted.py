"""berth under a real systemd: its units, their sandboxes, journald, logind and polkit agents.

Every test runs inside the machine booted by conftest.py, where tools/quickstart (the README's first
command) has installed and started berth from a fresh Debian 12. See docs/systemd.md.
"""
import json
import re
import time

import pytest

from bootedmachine import FIGURES, INSIDE_INPUT, INSIDE_SRC

UNITS = ["broker", "fetcher", "unpacker", "supervisor"]
BUS_NAMES = {u: f"org.berth.{u.capitalize()}1" for u in UNITS}
# Issue 11's goals (the unpacker's is what it reaches; docs/systemd.md says why not 1.5).
EXPOSURE_CEILINGS = {"broker": 0.5, "fetcher": 1.5, "unpacker": 2.2, "supervisor": 7.0}
UNIT_DIR = "/usr/local/lib/systemd/system"

MEMBER, OUTSIDER, ADMIN = "systest-member", "systest-outsider", "systest-admin"
ADMIN_PASSWORD = "systest-admin-pw-1"


def show(machine, unit, *props):
    out = machine.run(["systemctl", "show", f"berth-{unit}.service", *[f"--property={p}" for p in props]]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def exposure(text):
    return float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", text).group(1))


@pytest.fixture(scope="module")
def users(machine):
    """A member of group berth, a user outside it, and an administrator (group sudo, which Debian's
    polkit names as the admin identity) with a password, for the prompt."""
    machine.sh(f"""
        id {MEMBER} >/dev/null 2>&1 || useradd -m -G berth {MEMBER}
        id {OUTSIDER} >/dev/null 2>&1 || useradd -m {OUTSIDER}
        id {ADMIN} >/dev/null 2>&1 || useradd -m -G sudo {ADMIN}
        echo '{ADMIN}:{ADMIN_PASSWORD}' | chpasswd
    """)
    return MEMBER, OUTSIDER, ADMIN


# --- from zero --------------------------------------------------------------------------------------

def test_nothing_of_berth_was_there_before_the_quick_start(machine):
    assert machine.preexisting == []


def test_the_system_booted_cleanly(machine):
    assert machine.boot_problems == "", machine.boot_problems


def test_quick_start_ran_berthctl_info(machine):
    out = machine.quickstart.stdout
    for u in UNITS:
        assert re.search(rf"^\s*{u}\b.*running", out, re.M | re.I), out


# --- the units, as systemd runs them ----------------------------------------------------------------

@pytest.mark.parametrize("unit", UNITS)
def test_service_was_started_by_bus_activation_through_its_unit(machine, unit):
    props = show(machine, unit, "ActiveState", "MainPID", "UnitFileState", "FragmentPath", "BusName")
    assert props["ActiveState"] == "active", props
    # No [Install] section and nobody started it by name: only an activation could have.
    assert props["UnitFileState"] == "static", props
    assert props["FragmentPath"] == f"{UNIT_DIR}/berth-{unit}.service"
    assert props["BusName"] == BUS_NAMES[unit]
    owner = machine.run(["busctl", "status", "--no-pager", BUS_NAMES[unit]]).stdout
    assert re.search(rf"^PID={props['MainPID']}$", owner, re.M), owner
    # The dbus-daemon asked systemd for the unit: its activation log line names it.
    log = machine.run(["journalctl", "-u", "dbus.service", "--no-pager", "-o", "cat"]).stdout
    assert f"Activating via systemd: service name='{BUS_NAMES[unit]}' unit='berth-{unit}.service'" in log, log


def test_unit_settings_in_force(machine):
    broker = show(machine, "broker", "User", "CapabilityBoundingSet", "PrivateNetwork", "ProtectSystem",
                  "RestrictAddressFamilies")
    assert broker["User"] == "berth-broker"
    assert broker["CapabilityBoundingSet"] == ""
    assert broker["PrivateNetwork"] == "yes" and broker["ProtectSystem"] == "strict"
    assert broker["RestrictAddressFamilies"] == "AF_UNIX"

    fetcher = show(machine, "fetcher", "User", "CapabilityBoundingSet", "PrivateNetwork", "ProtectSystem")
    assert fetcher["User"] == "berth-fetcher" and fetcher["CapabilityBoundingSet"] == ""
    assert fetcher["PrivateNetwork"] == "no"

    unpacker = show(machine, "unpacker", "User", "CapabilityBoundingSet", "PrivateNetwork", "SystemCallFilter",
                    "RestrictNamespaces", "UMask")
    assert unpacker["User"] in ("", "root")
    assert set(unpacker["CapabilityBoundingSet"].split()) == {
        "cap_chown", "cap_dac_override", "cap_fowner", "cap_fsetid", "cap_mknod", "cap_setfcap", "cap_sys_admin"}
    assert unpacker["PrivateNetwork"] == "yes"
    assert " seccomp" in " " + unpacker["SystemCallFilter"]
    assert set(unpacker["RestrictNamespaces"].split()) == {"mnt", "net"}

    supervisor = show(machine, "supervisor", "Delegate", "KillMode", "CapabilityBoundingSet", "ProtectSystem",
                      "RestrictNamespaces", "NoNewPrivileges", "MainPID")
    assert supervisor["Delegate"] == "yes" and supervisor["KillMode"] == "process"
    caps = set(supervisor["CapabilityBoundingSet"].split())
    assert {"cap_sys_admin", "cap_sys_chroot", "cap_setuid", "cap_setgid", "cap_net_admin"} <= caps
    assert not caps & {"cap_sys_module", "cap_sys_rawio", "cap_sys_boot", "cap_sys_time", "cap_bpf"}
    assert supervisor["NoNewPrivileges"] == "no"
    assert "user" not in supervisor["RestrictNamespaces"].split()

    # What the kernel says of the running processes, not only what systemd reports.
    for unit, user in (("broker", "berth-broker"), ("fetcher", "berth-fetcher"), ("unpacker", "root")):
        pid = show(machine, unit, "MainPID")["MainPID"]
        status = machine.run(["cat", f"/proc/{pid}/status"]).stdout
        uid = machine.run(["id", "-u", user]).stdout.strip()
        assert re.search(rf"^Uid:\s+{uid}\s", status, re.M), status
        if unit != "unpacker":
            assert re.search(r"^CapBnd:\s+0+$", status, re.M), status


@pytest.mark.parametrize("unit", UNITS)
def test_exposure_of_running_unit_matches_offline_score_and_goal(machine, unit):
    live = machine.run(["systemd-analyze", "security", "--no-pager", f"berth-{unit}.service"]).stdout
    offline = machine.run(["systemd-analyze", "security", "--no-pager", "--offline=true",
                           f"{UNIT_DIR}/berth-{unit}.service"]).stdout
    FIGURES[f"exposure_{unit}"] = exposure(live)
    assert exposure(live) == exposure(offline), live
    assert exposure(live) <= EXPOSURE_CEILINGS[unit], live


# --- each service doing its job under its sandbox ---------------------------------------------------

def test_pull_unpack_and_a_view_the_caller_can_read(machine, registry):
    ref = f"{registry.host}/systest/busybox:1"
    machine.run(["berthctl", "images", "pull", ref])
    listing = machine.run(["berthctl", "images", "ls"]).stdout
    assert "systest/busybox" in listing, listing
    # The unpacker's work: committed snapshots.
    snaps = machine.run(["berthctl", "snapshots", "ls"]).stdout
    assert "sha256:" in snaps, snaps

    machine.run(["mkdir", "-p", "/srv/view"])
    machine.run(["berthctl", "images", "mount", ref, "/srv/view"])
    # Made in PID 1's mount namespace, where the caller lives, not in the supervisor's private one.
    mounts = machine.run(["findmnt", "--task", "1", "-n", "-o", "OPTIONS", "/srv/view"]).stdout
    assert {"ro", "nosuid", "nodev"} <= set(mounts.strip().split(",")), mounts
    listing = machine.run(["ls", "/srv/view/bin"]).stdout
    assert "busybox" in listing and "sh" in listing, listing
    # The supervisor finds its views in the host's mount table, so garbage collection keeps them.
    chain = json.loads(machine.run(["berthctl", "snapshots", "ls", "--json"]).stdout)[0]["chain_id"]
    assert json.loads(machine.run(["berthctl", "snapshots", "info", chain]).stdout)["mounted"] is True
    machine.run(["berthctl", "images", "unmount", "/srv/view"])
    assert machine.run(["findmnt", "--task", "1", "/srv/view"], check=False).returncode != 0
    assert json.loads(machine.run(["berthctl", "snapshots", "info", chain]).stdout)["mounted"] is False


def test_failed_pull_lands_in_the_journal_as_a_warning(machine, registry):
    since = machine.run(["date", "+@%s"]).stdout.strip()
    p = machine.run(["berthctl", "images", "pull", f"{registry.host}/systest/missing:none"], check=False)
    assert p.returncode != 0
    # journald reads the service's stderr stream on its own schedule: wait for the line to arrive.
    deadline = time.monotonic() + 60
    while True:
        log = machine.run(["journalctl", "-u", "berth-fetcher", "-p", "warning", "--since", since, "--no-pager",
                           "-o", "cat"]).stdout
        if "systest/missing" in log or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "systest/missing" in log, log
    # ... and not everything is a warning: informational lines stay below it.
    info = machine.run(["journalctl", "-u", "berth-fetcher", "-p", "info..info", "--no-pager", "-o", "cat"]).stdout
    assert info.strip() != "", "the fetcher logged nothing at info: priorities are not reaching journald"


# --- people: a logind session, group berth, polkit ---------------------------------------------------

def test_member_with_a_logind_session_pulls(machine, registry, users):
    ref = f"{registry.host}/systest/busybox:2"
    p = machine.run(["sh", "-c", 'loginctl show-session "$XDG_SESSION_ID" --property=Name --property=Remote '
                     '--property=Class && berthctl images pull ' + ref], user=MEMBER)
    assert f"Name={MEMBER}" in p.stdout, p.stdout + p.stderr  # pam_systemd registered a real session
    assert f"{ref}" in machine.run(["berthctl", "images", "ls"]).stdout


def test_outsider_is_refused_with_the_polkit_action_named(machine, registry, users):
    p = machine.run(["berthctl", "images", "pull", f"{registry.host}/systest/busybox:1"], user=OUTSIDER,
                    check=False)
    assert p.returncode != 0
    assert "org.berth.image-pull" in p.stderr, p.stderr


def test_admin_action_prompts_through_pkttyagent(machine, registry, users):
    """A member removes an image (org.berth.image-remove: administrators only) on a terminal: berthctl
    starts polkit's text agent for itself, which asks for an administrator's password on the member's
    terminal; answering it lets the call pass. Nobody but berthctl starts an agent."""
    ref = f"{registry.host}/systest/busybox:3"
    machine.run(["berthctl", "images", "pull", ref])
    assert ref in machine.run(["berthctl", "images", "ls"]).stdout
    machine.sh(f"umask 077; echo '{ADMIN_PASSWORD}' > /run/systest-admin-pw")
    # --session-command, not -c: runuser -c starts a new session without the terminal, and the agent
    # must read from it.
    p = machine.run(["/usr/bin/python3", f"{INSIDE_INPUT}/pty-answer.py", "/run/systest-admin-pw",
                     "runuser", "-l", MEMBER, "--session-command", "exec berthctl images rm " + ref],
                    check=False)
    machine.run(["rm", "-f", "/run/systest-admin-pw"])
    transcript = p.stdout
    assert "org.berth.image-remove" in transcript, transcript
    assert ADMIN in transcript, transcript
    assert "[answered: yes]" in transcript, transcript
    assert p.returncode == 0, transcript
    assert ref not in machine.run(["berthctl", "images", "ls"]).stdout


# --- containers under systemd's cgroup delegation ---------------------------------------------------

IMAGE = "localhost/busybox:latest"  # what tools/quickstart imported


def containers(machine):
    return {c["Name"]: c for c in json.loads(machine.run(["berthctl", "ls", "-a", "--json"]).stdout)}


def cgroup_of(machine, pid):
    """The unified hierarchy's path of pid, as the machine's systemd sees it."""
    text = machine.run(["cat", f"/proc/{pid}/cgroup"]).stdout
    return re.search(r"^0::(\S+)$", text, re.M).group(1)


def wait_until(pred, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.2)


def unit_props(machine, unit, *props):
    out = machine.run(["systemctl", "show", unit, *[f"--property={p}" for p in props]]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def procs_of(machine, cgroup):
    return {int(p) for p in machine.run(["cat", f"/sys/fs/cgroup{cgroup}/cgroup.procs"]).stdout.split()}


def parent_of(machine, pid):
    status = machine.run(["cat", f"/proc/{pid}/status"]).stdout
    return int(re.search(r"^PPid:\s+(\d+)$", status, re.M).group(1))


def alive(machine, pid):
    """Running, not a zombie (whose /proc entry stays until it is reaped)."""
    stat = machine.run(["cat", f"/proc/{pid}/stat"], check=False).stdout
    return stat != "" and stat.rsplit(")", 1)[1].split()[0] != "Z"


def berth_scopes(machine):
    out = machine.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "berth-*.scope"]).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def detached(machine):
    """t1: a detached container started by root: its init, its shim (the init's parent), its scope."""
    # --net none: the machine shares the host's network namespace (and its berth0), and nspawn keeps
    # /proc/sys read-only; CNI networking is tested on the host (tests/integration/test_network.py).
    machine.run(["berthctl", "run", "-d", "--name", "t1", "--net", "none", IMAGE, "sleep", "1000"])
    c = containers(machine)["t1"]
    assert c["Status"] == "running" and c["Pid"] > 0, c
    cgroup = cgroup_of(machine, c["Pid"])
    scope_cgroup = cgroup.rsplit("/", 1)[0]
    return {"pid": c["Pid"], "id": c["Id"], "cgroup": cgroup, "scope_cgroup": scope_cgroup,
            "scope": scope_cgroup.split("/")[-1], "shim": parent_of(machine, c["Pid"])}


def test_quick_start_run_printed_the_containers_output(machine):
    out = machine.quickstart.stdout
    assert f"+ berthctl run --rm {IMAGE} echo hello" in out, out
    assert re.search(r"^hello$", out.split("+ berthctl run --rm", 1)[1], re.M), out


def test_container_and_its_shim_sit_in_their_own_delegated_scope(machine, detached):
    """berth-<id>.scope (Delegate=yes) holds the shim in <scope>/shim and the container in
    <scope>/container; berth-supervisor.service's cgroup holds the supervisor only."""
    scope, scope_cgroup = detached["scope"], detached["scope_cgroup"]
    assert scope == f"berth-{detached['id']}.scope", detached
    assert scope_cgroup == f"/berth.slice/{scope}", detached
    assert detached["cgroup"] == f"{scope_cgroup}/container", detached
    props = unit_props(machine, scope, "Delegate", "ActiveState", "Slice", "ControlGroup", "Transient",
                       "Description")
    assert props["Delegate"] == "yes" and props["ActiveState"] == "active", props
    assert props["Slice"] == "berth.slice" and props["Transient"] == "yes", props
    assert props["ControlGroup"] == scope_cgroup, props
    assert "'t1'" in props["Description"], props
    # The init itself, not only a child of it, is in the container's cgroup; its parent is the shim,
    # in the shim's.
    assert detached["pid"] in procs_of(machine, detached["cgroup"])
    shim = detached["shim"]
    assert machine.run(["cat", f"/proc/{shim}/comm"]).stdout.strip() == "berth-shim"
    assert cgroup_of(machine, shim) == f"{scope_cgroup}/shim"
    assert procs_of(machine, scope_cgroup) == set()  # v2: processes only in the leaves
    # Nothing of the container in the supervisor's unit: only the supervisor itself.
    supervisor = show(machine, "supervisor", "MainPID", "ControlGroup")
    assert supervisor["ControlGroup"] == "/system.slice/berth-supervisor.service", supervisor
    assert procs_of(machine, supervisor["ControlGroup"]) == {int(supervisor["MainPID"])}
    # `systemctl status` of the scope shows what it is and both processes.
    status = machine.run(["systemctl", "status", "--no-pager", "--lines=0", scope], check=False).stdout
    assert "berth container 't1'" in status and "berth-shim" in status and "sleep 1000" in status, status


def test_supervisor_exposure_with_a_container_running(machine, detached):
    assert containers(machine)["t1"]["Status"] == "running"
    live = machine.run(["systemd-analyze", "security", "--no-pager", "berth-supervisor.service"]).stdout
    FIGURES["exposure_supervisor_with_container"] = exposure(live)
    assert exposure(live) <= EXPOSURE_CEILINGS["supervisor"], live


def test_containers_outlive_a_supervisor_restart_and_stop(machine, detached):
    pid, shim = detached["pid"], detached["shim"]
    since = machine.run(["date", "+@%s"]).stdout.strip()
    before = show(machine, "supervisor", "MainPID")["MainPID"]
    machine.run(["systemctl", "restart", "berth-supervisor.service"])
    after = show(machine, "supervisor", "MainPID")["MainPID"]
    assert after not in ("0", before), (before, after)
    assert "sleep" in machine.run(["cat", f"/proc/{pid}/cmdline"]).stdout
    assert machine.run(["cat", f"/proc/{shim}/comm"]).stdout.strip() == "berth-shim"
    assert cgroup_of(machine, pid) == detached["cgroup"]
    c = containers(machine)["t1"]
    assert (c["Status"], c["Pid"]) == ("running", pid), c
    assert re.search(r"^t1\s.*running", machine.run(["berthctl", "ls"]).stdout, re.M | re.I)

    # t2 ends on SIGTERM with status 0: `stop` after a plain stop of the supervisor's unit, and a
    # `systemctl kill` of everything in it, which reaches neither shims nor containers.
    machine.run(["berthctl", "run", "-d", "--name", "t2", "--net", "none", IMAGE, "sh", "-c",
                 "trap 'exit 0' TERM; sleep 1000 & wait"])
    pid2 = containers(machine)["t2"]["Pid"]
    shim2 = parent_of(machine, pid2)
    machine.run(["systemctl", "kill", "--kill-who=all", "--signal=SIGKILL", "berth-supervisor.service"])
    machine.run(["systemctl", "stop", "berth-supervisor.service"])
    for p in (pid, pid2, shim, shim2):
        assert alive(machine, p), p
    # The broker activates the supervisor again for these calls.
    machine.run(["berthctl", "stop", "-t", "30", "t2"])
    assert machine.run(["berthctl", "wait", "t2"]).stdout.strip() == "0"
    machine.run(["berthctl", "kill", "t1"])
    w = machine.run(["berthctl", "wait", "t1"], check=False)
    assert (w.returncode, w.stdout.strip()) == (137, "137"), w
    c = containers(machine)
    assert (c["t1"]["Status"], c["t1"]["ExitCode"]) == ("stopped", 137), c["t1"]
    assert (c["t2"]["Status"], c["t2"]["ExitCode"]) == ("stopped", 0), c["t2"]
    t2_scope = f"berth-{c['t2']['Id']}.scope"
    machine.run(["berthctl", "rm", "t1", "t2"])
    assert "t1" not in containers(machine)
    # The scopes went with their containers, cgroups and all.
    for scope in (detached["scope"], t2_scope):
        wait_until(lambda: unit_props(machine, scope, "LoadState")["LoadState"] == "not-found",
                   f"{scope} gone")
    assert machine.run(["test", "-e", f"/sys/fs/cgroup{detached['scope_cgroup']}"], check=False).returncode != 0
    # systemd never found a process of ours left in the supervisor's unit when (re)starting it.
    log = machine.run(["journalctl", "--no-pager", "-o", "cat", "--since", since]).stdout
    assert "berth-supervisor.service: Found left-over process" not in log, log
    assert not re.search(r"berth-supervisor\.service: Unit process \d+ \(.*\) remains running", log), log


def test_device_filter_on_cgroup_v2(machine):
    """The container's cgroup carries an eBPF device filter built from linux.resources.devices: a node
    made with mknod (CAP_MKNOD granted) cannot be opened unless the rules allow it; /dev/null can."""
    assert machine.run(["stat", "-f", "-c", "%T", "/sys/fs/cgroup"]).stdout.strip() == "cgroup2fs"
    # Control: in the machine itself, the same node opens, or fails for another reason than EPERM.
    ctl = machine.sh("mknod /dev/systest-sda b 8 0; dd if=/dev/systest-sda of=/dev/null count=0 2>&1; "
                     "rm -f /dev/systest-sda", check=False).stdout
    assert "Operation not permitted" not in ctl, ctl
    # A default container has no CAP_MKNOD at all.
    p = machine.run(["berthctl", "run", "--net", "none", "--rm", IMAGE, "mknod", "/dev/sda", "b", "8", "0"], check=False)
    assert p.returncode != 0 and "Operation not permitted" in p.stdout + p.stderr, p
    script = ("mknod /dev/sda b 8 0 && mknod /dev/null2 c 1 3 && echo made; "
              "echo x > /dev/null2 && echo null-ok; dd if=/dev/sda of=/dev/null count=0 2>&1; echo rc=$?")
    p = machine.run(["berthctl", "run", "--net", "none", "--rm", "--cap-add", "MKNOD", IMAGE, "sh", "-c", script], check=False)
    out = p.stdout + p.stderr
    assert "made" in out and "null-ok" in out, out
    assert re.search(r"can't open '/dev/sda': Operation not permitted", out), out
    assert "rc=1" in out, out


def test_memory_limit_and_oom_in_the_scope(machine):
    controllers = machine.run(["cat", "/sys/fs/cgroup/cgroup.controllers"]).stdout.split()
    scopes = berth_scopes(machine)
    if "memory" not in controllers:
        # A hybrid host (these CI machines) keeps the memory controller in its v1 hierarchy: the
        # machine's unified hierarchy cannot have it. The limit must be refused, not dropped.
        FIGURES["machine_memory_controller"] = "absent"
        p = machine.run(["berthctl", "run", "--net", "none", "--rm", "--memory", "32m", IMAGE, "true"], check=False)
        assert p.returncode != 0 and "'memory' controller is not available" in p.stderr, p
        wait_until(lambda: berth_scopes(machine) <= scopes, "the failed create's scope gone")
        return
    FIGURES["machine_memory_controller"] = "present"
    machine.run(["berthctl", "run", "--net", "none", "-d", "--name", "lim", "--memory", "48m", IMAGE, "sleep", "1000"])
    c = containers(machine)["lim"]
    cgroup = cgroup_of(machine, c["Pid"])
    assert cgroup == f"/berth.slice/berth-{c['Id']}.scope/container", cgroup
    assert machine.run(["cat", f"/sys/fs/cgroup{cgroup}/memory.max"]).stdout.strip() == str(48 << 20)
    machine.run(["berthctl", "rm", "-f", "lim"])
    p = machine.run(["berthctl", "run", "--net", "none", "--name", "oom", "--memory", "32m", IMAGE, "tail", "/dev/zero"],
                    check=False)
    assert p.returncode == 137, p
    c = containers(machine)["oom"]
    assert (c["ExitCode"], c["Reason"]) == (137, "oom"), c
    machine.run(["berthctl", "rm", "oom"])


def test_a_restarted_container_stays_in_its_scope(machine):
    """--restart: the second run's shim and init are in berth-<id>.scope as the first run's were (the
    restarting process is forked by the supervisor: without a scope of its own it would stay in
    berth-supervisor.service, and the container's cgroup would be made outside any unit)."""
    # The writable layer stays across runs: the first run fails, the second one lives.
    script = "test -e /again && exec sleep 1000; touch /again; exit 3"
    machine.run(["berthctl", "run", "-d", "--name", "rs", "--net", "none", "--restart", "on-failure:5", IMAGE,
                 "sh", "-c", script])
    wait_until(lambda: (lambda c: c["Status"] == "running" and c["RestartCount"] >= 1)(containers(machine)["rs"]),
               "rs restarted and running")
    c = containers(machine)["rs"]
    scope = f"berth-{c['Id']}.scope"
    assert cgroup_of(machine, c["Pid"]) == f"/berth.slice/{scope}/container", c
    shim = parent_of(machine, c["Pid"])
    assert machine.run(["cat", f"/proc/{shim}/comm"]).stdout.strip() == "berth-shim"
    assert cgroup_of(machine, shim) == f"/berth.slice/{scope}/shim"
    props = unit_props(machine, scope, "ActiveState", "Delegate")
    assert (props["ActiveState"], props["Delegate"]) == ("active", "yes"), props
    supervisor = show(machine, "supervisor", "MainPID", "ControlGroup")
    assert procs_of(machine, supervisor["ControlGroup"]) == {int(supervisor["MainPID"])}
    machine.run(["berthctl", "rm", "-f", "rs"])
    wait_until(lambda: unit_props(machine, scope, "LoadState")["LoadState"] == "not-found", f"{scope} gone")


def test_a_living_container_under_systemd(machine):
    """Issue 9 under a real systemd, where the services run sandboxed by their units: exec (a second exec
    is served by the shim's spare joiner, which must sit in the scope's container cgroup), a foreground
    run's output in its log, and events that happened while the broker was stopped replayed by the next
    broker from the rings in its and the supervisor's StateDirectory."""
    machine.run(["berthctl", "run", "-d", "--name", "lv", "--net", "none", IMAGE, "sleep", "1000"])
    c = containers(machine)["lv"]
    container_cgroup = f"/berth.slice/berth-{c['Id']}.scope/container"
    assert machine.run(["berthctl", "exec", "lv", "echo", "one"]).stdout == "one\n"
    assert machine.run(["berthctl", "exec", "lv", "echo", "two"]).stdout == "two\n"
    machine.run(["berthctl", "exec", "-d", "lv", "sleep", "4242"])
    found = machine.sh("for f in /proc/[0-9]*/cmdline; do [ \"$(tr '\\0' ' ' < $f 2>/dev/null)\" = 'sleep 4242 ' ] "
                       "&& basename ${f%/cmdline}; done; true").stdout.split()
    assert len(found) == 1, found
    pid = int(found[0])
    assert cgroup_of(machine, pid) == container_cgroup
    assert procs_of(machine, container_cgroup) >= {c["Pid"], pid}

    machine.run(["berthctl", "run", "--name", "fg", "--net", "none", IMAGE, "sh", "-c",
                 "echo fg-out; echo fg-err >&2"])
    logs = machine.run(["berthctl", "logs", "fg"])
    assert "fg-out" in logs.stdout and "fg-err" in logs.stderr, logs

    machine.run(["systemctl", "stop", "berth-broker.service"])
    machine.run(["kill", "-KILL", str(c["Pid"])])
    # The supervisor saw the end with no broker there; the next berthctl starts one by bus activation.
    machine.run(["systemd-run", "--unit=berth-events-probe", "--quiet", "/bin/sh", "-c",
                 "berthctl events --json --since 10m --filter container=lv > /run/berth-events-probe.json"])
    try:
        def lifecycle():
            text = machine.run(["cat", "/run/berth-events-probe.json"], check=False).stdout
            events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
            return [e["action"] for e in events if e["action"] in ("create", "start", "die")]
        wait_until(lambda: "die" in lifecycle(), "lv's die replayed by the next broker")
        assert lifecycle() == ["create", "start", "die"]
    finally:
        machine.run(["systemctl", "stop", "berth-events-probe.service"], check=False)
    machine.run(["berthctl", "rm", "-f", "lv", "fg"])


def test_run_rm_under_systemd_figure(machine):
    """A figure, not a threshold: `run --rm IMAGE true` end to end inside the booted machine, scope
    creation included (median of 5, after one warm-up run)."""
    out = machine.sh("for i in 0 1 2 3 4 5; do s=$(date +%s%N); berthctl run --rm --net none " + IMAGE +
                     " true || exit 1; e=$(date +%s%N); echo $(( (e - s) / 1000 )); done").stdout
    times = sorted(int(t) for t in out.split()[1:])
    assert len(times) == 5, out
    FIGURES["run_rm_true_ms_median"] = round(times[2] / 1000, 1)
    # Each --rm container's scope went with it.
    wait_until(lambda: all(unit_props(machine, u, "ActiveState")["ActiveState"] != "active"
                           for u in berth_scopes(machine)), "no berth scope active")


def test_member_with_a_logind_session_runs_a_container(machine, users):
    p = machine.run(["sh", "-c", 'loginctl show-session "$XDG_SESSION_ID" --property=Name && '
                     f"berthctl run --rm --net none {IMAGE} id -u"], user=MEMBER)
    assert f"Name={MEMBER}" in p.stdout, p.stdout + p.stderr
    assert p.stdout.strip().splitlines()[-1] == "0", p.stdout + p.stderr


def test_outsider_is_refused_a_container_with_the_polkit_action_named(machine, users):
    p = machine.run(["berthctl", "run", "--rm", "--net", "none", IMAGE, "true"], user=OUTSIDER, check=False)
    assert p.returncode != 0
    assert "org.berth.container-run" in p.stderr, p.stderr


# --- the tools around it ----------------------------------------------------------------------------

def test_bus_policy_never_named_a_user_that_did_not_exist(machine):
    """meson install creates the users before it installs the bus policy naming them: dbus-daemon,
    which reloads its policy as soon as a file appears, must never have warned about them."""
    log = machine.run(["journalctl", "-u", "dbus.service", "--no-pager", "-o", "cat"]).stdout
    assert not re.search(r"Unknown (username|group)", log), log


def test_hardening_f8_state_modes_survive_a_restart(machine):
    """Issue 12 finding 8: after each service's (re)start, the stores keep tmpfiles' 0700 (systemd
    applies the unit's StateDirectoryMode= at every start)."""
    for unit in UNITS:
        machine.run(["systemctl", "restart", f"berth-{unit}.service"])
    modes = machine.run(["stat", "-c", "%n %a", "/var/lib/berth/snapshots", "/var/lib/berth/containers",
                         "/var/lib/berth/fetcher", "/var/lib/berth/meta", "/var/lib/berth/content"]).stdout
    modes = dict(line.split() for line in modes.splitlines())
    assert set(modes.values()) == {"700"}, modes
    assert machine.run(["stat", "-c", "%a", "/var/log/berth"]).stdout.strip() == "750"
    # Still answering after the restarts.
    machine.run(["berthctl", "info"])


def test_dev_down_leaves_systemds_polkitd_alone(machine):
    """Last: it stops berth. dev-up found polkitd started by systemd and must not have claimed it."""
    pid_before = machine.run(["systemctl", "show", "--property=MainPID", "--value", "polkit.service"]).stdout.strip()
    assert pid_before not in ("", "0")
    assert machine.run(["test", "-e", "/run/berth/dev-up/polkitd.pid"], check=False).returncode != 0
    machine.run([f"{INSIDE_SRC}/tools/dev-down"])
    assert machine.run(["systemctl", "is-active", "polkit.service"], check=False).stdout.strip() == "active"
    assert machine.run(["systemctl", "show", "--property=MainPID", "--value", "polkit.service"]).stdout.strip() == \
        pid_before
    for unit in UNITS:
        state = machine.run(["systemctl", "is-active", f"berth-{unit}.service"], check=False).stdout.strip()
        assert state in ("inactive", "deactivating"), (unit, state)
    # The next call activates them again, through the units.
    machine.run(["berthctl", "info"])

