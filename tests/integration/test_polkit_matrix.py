"""Issue 12, finding 0: every public method of the broker (as `busctl introspect` lists them) against every
kind of caller, each cell asserting the specific outcome: allowed, or refused naming the polkit action
the method needs.

Callers: root; a member of group berth (the shipped rule grants info, image-pull, container-run,
container-manage); a stranger; for each action a non-root user granted that one action by a rules file;
and a non-root administrator (group sudo, no active local session) answering auth_admin with its
password through pkttyagent on a terminal, who gets what the shipped policy's allow_any says. One call per cell, one polkit round trip: every argument list is cheap and fails *after*
authorisation with an error of its own (unknown flags, no such image, ...), so "allowed" is told from
"refused" without pulling or running anything.
"""
import re
import shlex
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from berthtest import stack
from berthtest.config import REGISTRIES_CONF, BerthConfig
from berthtest.fakeregistry import FakeRegistry
from berthtest.fixtures import *  # noqa: F401,F403
from berthtest.stack import berthctl, busctl

BROKER = "org.berth.Broker1"
ROOT_PATH = "/org/berth/Broker1"
MANAGER = "org.berth.Broker1.Manager"
TRANSFER = "org.berth.Broker1.Transfer"
CONTAINER = "org.berth.Broker1.Container"
PTY_ANSWER = stack.TOP / "tests" / "system" / "pty-answer.py"
RULES = Path("/etc/polkit-1/rules.d/48-berth-test-matrix.rules")
IMAGE = "localhost/berth-matrix:latest"
NONE = "localhost/berth-matrix-none:x"
BAD = 1 << 62  # a flag bit no method defines: refused after authorisation ("Unknown flags")

ACTIONS = ["info", "image-pull", "image-remove", "image-import", "image-mount", "container-run",
           "container-manage", "container-manage-any", "container-privileged", "registry-login",
           "maintenance", "network-manage"]
MEMBER_ACTIONS = {"info", "image-pull", "container-run", "container-manage"}
ADMIN = "berth-test-pkadmin"
ADMIN_PASSWORD = "matrix-" + uuid.uuid4().hex[:12]
OWNED = "container-manage(owner)"  # container-manage for the owner, container-manage-any for anyone else
# The containers of the rows; "manager:<container>" rows call the Manager about that container by name.
NAMES = {"root-container": f"berth-matrix-root-{uuid.uuid4().hex[:6]}",
         "member-container": f"berth-matrix-member-{uuid.uuid4().hex[:6]}"}
EXEC_OPTIONS = '{"args": ["true"]}'


def grantee(action):
    return "bg-" + action


# (object, interface, method, signature, args, action, what an authorised call answers: None = success,
# else a regex of its error). Objects: "manager", "transfer" (root's, running), "root-container",
# "member-container".
TABLE = [
    # First, while root's pull is surely still running. Cancel: polkit's image-pull, then the handler's
    # own rule (only the uid that started it); root's cell, the last of the row, really cancels.
    ("transfer", TRANSFER, "Cancel", "", [], "image-pull", "belongs to another user"),
    ("manager", MANAGER, "GetInfo", "", [], "info", None),
    ("manager", MANAGER, "PullImage", "sst", ["BAD REF!!", "", 0], "image-pull", "Invalid reference"),
    ("manager", MANAGER, "UnpackImage", "sst", [NONE, "", 0], "image-pull", "No image"),
    ("manager", MANAGER, "ListTransfers", "", [], "info", None),
    ("manager", MANAGER, "ListImages", "", [], "info", None),
    ("manager", MANAGER, "InspectImage", "s", [NONE], "info", "No image"),
    ("manager", MANAGER, "TagImage", "ss", [NONE, "localhost/berth-matrix-none:y"], "image-pull", "No image"),
    ("manager", MANAGER, "TagImage", "ss", [NONE, "example.com/berth-matrix/none:y"], "image-import",
     "No image"),
    ("manager", MANAGER, "RemoveImage", "st", [NONE, 0], "image-remove", "No image"),
    ("manager", MANAGER, "ListContent", "", [], "info", None),
    ("manager", MANAGER, "PruneContent", "t", [BAD], "maintenance", "Unknown flags"),
    ("manager", MANAGER, "Login", "sss", ["bad/registry", "u", "s"], "registry-login", "Invalid registry name"),
    ("manager", MANAGER, "Logout", "s", ["bad/registry"], "registry-login", "Invalid registry name"),
    ("manager", MANAGER, "ListSnapshots", "", [], "info", None),
    ("manager", MANAGER, "SnapshotInfo", "s", ["sha256:" + "0" * 64], "info", "No snapshot"),
    ("manager", MANAGER, "RemoveSnapshots", "ast", [[], BAD], "maintenance", "Unknown flags"),
    ("manager", MANAGER, "Usage", "s", [NONE], "info", "No image"),
    ("manager", MANAGER, "MountImage", "sht", [NONE, 0, BAD], "image-mount", "Unknown flags"),
    ("manager", MANAGER, "UnmountImage", "ht", [0, BAD], "image-mount", "Unknown flags"),
    ("manager", MANAGER, "ImportImage", "hst", [0, "", BAD], "image-import", "Unknown flags"),
    ("manager", MANAGER, "ExportImage", "sht", [NONE, 0, BAD], "info", "Unknown flags"),
    ("manager", MANAGER, "CreateContainer", "sssa{sh}t", [IMAGE, "", "", {}, BAD], "container-run",
     "Unknown flags"),
    ("manager", MANAGER, "ListContainers", "t", [0], "info", None),
    ("manager", MANAGER, "ListContainers", "t", [1], "container-manage-any", None),
    ("manager", MANAGER, "ListContainers", "t", [BAD], "info", "Unknown flags"),
    ("manager", MANAGER, "ListContainers", "t", [BAD | 1], "container-manage-any", "Unknown flags"),
    ("manager", MANAGER, "GetContainer", "s", ["berth-matrix-nope"], "info", "No container"),
    ("manager", MANAGER, "ExecContainer", "ssa{sh}t", ["berth-matrix-nope", EXEC_OPTIONS, {}, 0], "info",
     "No container"),
    ("manager:root-container", MANAGER, "ExecContainer", "ssa{sh}t",
     [NAMES["root-container"], EXEC_OPTIONS, {}, BAD], OWNED, "Unknown flags"),
    ("manager:member-container", MANAGER, "ExecContainer", "ssa{sh}t",
     [NAMES["member-container"], EXEC_OPTIONS, {}, BAD], OWNED, "Unknown flags"),
    ("manager", MANAGER, "ContainerStats", "ast", [[], BAD], "info", "Unknown flags"),
    ("manager", MANAGER, "SubscribeEvents", "tt", [0, 0], "info", None),
    ("manager", MANAGER, "SubscribeEvents", "tt", [0, BAD], "info", "Unknown flags"),
    ("manager", MANAGER, "SubscribeEvents", "tt", [0, BAD | 1], "container-manage-any", "Unknown flags"),
    ("manager", MANAGER, "UnsubscribeEvents", "", [], "info", None),
    ("manager", MANAGER, "CreateNetwork", "ssst", ["berth-matrix-none", "", "", BAD], "network-manage",
     "Unknown flags"),
    ("manager", MANAGER, "RemoveNetwork", "st", ["berth-matrix-none", BAD], "network-manage", "Unknown flags"),
    ("manager", MANAGER, "ListNetworks", "t", [BAD], "info", "Unknown flags"),
    ("manager", MANAGER, "InspectNetwork", "s", ["berth-matrix-none"], "info", "berth-matrix-none"),
]
for _obj in ("root-container", "member-container"):
    TABLE += [
        (_obj, CONTAINER, "Start", "t", [BAD], OWNED, "Unknown flags"),
        (_obj, CONTAINER, "Kill", "it", [15, BAD], OWNED, "Unknown flags"),
        (_obj, CONTAINER, "Stop", "ut", [1, BAD], OWNED, "Unknown flags"),
        (_obj, CONTAINER, "Remove", "t", [BAD], OWNED, "Unknown flags"),
        (_obj, CONTAINER, "Wait", "t", [BAD], OWNED, "Unknown flags"),
        (_obj, CONTAINER, "OpenLog", "t", [BAD], OWNED, "Unknown flags"),
        (_obj, CONTAINER, "Exec", "sa{sh}t", ['{"args": ["true"]}', {}, BAD], OWNED, "Unknown flags"),
        (_obj, CONTAINER, "Attach", "t", [BAD], OWNED, "Unknown flags"),
        (_obj, CONTAINER, "Top", "t", [BAD], OWNED, "Unknown flags"),
        (_obj, CONTAINER, "ResizeTerminal", "uut", [24, 80, BAD], OWNED, "Unknown flags"),
        (_obj, CONTAINER, "KillExec", "uit", [1, 15, BAD], OWNED, "Unknown flags"),
        (_obj, CONTAINER, "Pause", "t", [BAD], OWNED, "Unknown flags"),
        (_obj, CONTAINER, "Unpause", "t", [BAD], OWNED, "Unknown flags"),
        (_obj, CONTAINER, "OpenLogStreams", "t", [BAD], OWNED, "Unknown flags"),
        (_obj, CONTAINER, "GetNetwork", "t", [BAD], OWNED, "Unknown flags"),
        (_obj, CONTAINER, "GetSpec", "t", [BAD], OWNED, "Unknown flags"),
    ]


def admin_actions():
    """What an administrator outside an active local session gets by answering auth_admin: the actions
    whose shipped allow_any is an auth_admin (container-manage-any and container-privileged are "no"
    there, by design: only at an active local seat)."""
    import xml.etree.ElementTree as ET
    tree = ET.parse(stack.BUILD / "polkit" / "org.berth.policy")
    return {a.get("id").removeprefix("org.berth.") for a in tree.getroot().iter("action")
            if a.findtext("defaults/allow_any") in ("auth_admin", "auth_admin_keep", "yes")}


def principals(member, outsider):
    """(name, user or None for root, granted actions or "all"). Root last: its Cancel ends the transfer."""
    out = [("stranger", outsider, set()), ("member", member, MEMBER_ACTIONS)]
    out += [(f"granted {a}", grantee(a), {a}) for a in ACTIONS]
    out += [("admin via pkttyagent", ADMIN, admin_actions()), ("root", None, "all")]
    return out


# ---- the callers -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def grantees():
    for a in ACTIONS:
        stack.ensure_user(grantee(a))
    stack.ensure_user(ADMIN, groups=["sudo"])
    stack.run(["chpasswd"], input=f"{ADMIN}:{ADMIN_PASSWORD}\n", check=True)
    grants = ",\n".join(f'    "{grantee(a)}": "org.berth.{a}"' for a in ACTIONS)
    RULES.write_text("// berth's polkit matrix test: each bg-* user is granted one action.\n"
                     "polkit.addRule(function(action, subject) {\n"
                     f"  var grants = {{\n{grants}\n  }};\n"
                     "  if (grants[subject.user] === action.id)\n"
                     "    return polkit.Result.YES;\n"
                     "});\n")
    try:
        # polkitd reloads rules when the directory changes: the last grantee's call passing says it did.
        stack.wait_for(lambda: busctl("call", BROKER, ROOT_PATH, MANAGER, "PruneContent", "t", str(BAD),
                                      user=grantee("maintenance")).stderr.find("Unknown flags") >= 0,
                       timeout=60, what="polkitd to load the matrix rules")
        yield
    finally:
        RULES.unlink()


@pytest.fixture(scope="module")
def objects(grantees, member, tmp_path_factory):
    """The objects of the rows: root's running transfer, root's and the member's created containers."""
    archive = tmp_path_factory.mktemp("matrix") / "busybox.tar"
    subprocess.run([str(stack.TOP / "tools" / "busybox-image"), "--name", IMAGE, str(archive)], check=True,
                   capture_output=True)
    assert berthctl("images", "import", str(archive)).returncode == 0
    names = NAMES
    for obj, user in (("root-container", None), ("member-container", member)):
        p = berthctl("create", "--name", names[obj], IMAGE, "true", user=user)
        assert p.returncode == 0, p.stderr
    paths = {"manager": ROOT_PATH}
    for obj, name in names.items():
        p = busctl("call", BROKER, ROOT_PATH, MANAGER, "GetContainer", "s", name)
        paths[obj] = re.search(r'"(/\S+)"', p.stdout).group(1)
        paths[f"manager:{obj}"] = ROOT_PATH
    # A pull that stays running: the registry answers the manifest request only when the test ends.
    release = threading.Event()
    reg = FakeRegistry()

    def hold(h, method, path):
        if "/manifests/" in path:
            release.wait(600)
            return FakeRegistry.reply(h, method, 404, b"{}") or True
        return False

    reg.fault = hold
    saved = REGISTRIES_CONF.read_bytes() if REGISTRIES_CONF.exists() else None
    BerthConfig().registry(reg.host, plain_http=True)
    p = busctl("call", BROKER, ROOT_PATH, MANAGER, "PullImage", "sst", f"{reg.host}/matrix/held:v1", "", "2")
    assert p.returncode == 0, p.stderr
    paths["transfer"] = re.search(r'"(/\S+)"', p.stdout).group(1)
    try:
        yield paths
    finally:
        release.set()
        busctl("call", BROKER, paths["transfer"], TRANSFER, "Cancel")
        reg.close()
        if saved is None:
            REGISTRIES_CONF.unlink(missing_ok=True)
        else:
            REGISTRIES_CONF.write_bytes(saved)
        for name in names.values():
            berthctl("rm", "-f", name)
        berthctl("images", "rm", IMAGE)


# One call through GDBus (busctl cannot pass a file descriptor): 'h' arguments are indexes into a list
# holding /dev/null; interactive authorisation allowed, as berthctl allows it on a terminal. Prints the
# D-Bus error's message and exits 1 on failure. Exec'd by the admin's shell, so it keeps the pid the
# agent registered for.
CALLER = r"""
import json, os, sys
from gi.repository import Gio, GLib
path, iface, method, sig, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
fds = Gio.UnixFDList.new()
fds.append(os.open("/dev/null", os.O_RDONLY))
bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
params = GLib.Variant("(" + sig + ")", tuple(args)) if sig else None
try:
    bus.call_with_unix_fd_list_sync("org.berth.Broker1", path, iface, method, params, None,
                                    Gio.DBusCallFlags.ALLOW_INTERACTIVE_AUTHORIZATION, 120000, fds, None)
except GLib.Error as e:
    print("Call failed: " + Gio.DBusError.get_remote_error(e) + ": " + e.message, file=sys.stderr)
    sys.exit(1)
"""


def call_as(user, path, iface, method, sig, args, pwfile=None):
    """One call; returns (returncode, text of its errors). The admin answers auth_admin on a terminal."""
    import json
    cmd = ["/usr/bin/python3", "-c", CALLER, path, iface, method, sig, json.dumps(args)]
    if user == ADMIN:
        agent_then = ('f=$(mktemp -u); mkfifo "$f"; pkttyagent --process $$ --notify-fd 3 3>"$f" & '
                      'read -r _ <"$f"; rm -f "$f"; exec ' + shlex.join(cmd))
        p = stack.run(["/usr/bin/python3", str(PTY_ANSWER), str(pwfile), "runuser", "-l", ADMIN,
                       "--session-command", agent_then], timeout=180)
        return p.returncode, p.stdout
    p = stack.run(cmd, user=user, input="")
    return p.returncode, p.stderr


OWNERS = {"root-container": "root", "member-container": "member"}


def expected_action(action, obj, who):
    """The action a cell needs: a container's owner needs container-manage, anyone else -any."""
    if action == OWNED:
        return "container-manage" if OWNERS[obj.split(":")[-1]] == who else "container-manage-any"
    return action


# ---- the matrix ----------------------------------------------------------------------------------

def test_hardening_f0_table_covers_every_public_method(objects):
    """Every method `busctl introspect` lists on each kind of object has a row (a new method fails here)."""
    for obj, iface in (("manager", MANAGER), ("transfer", TRANSFER), ("root-container", CONTAINER)):
        p = busctl("introspect", BROKER, objects[obj], iface)
        assert p.returncode == 0, p.stderr
        listed = set(re.findall(r"^\.(\w+)\s+method\b", p.stdout, re.M))
        assert listed, p.stdout
        rows = {m for o, i, m, *_ in TABLE if o == obj and i == iface}
        assert rows == listed, (iface, listed ^ rows)


def test_hardening_f0_polkit_matrix(objects, member, outsider, tmp_path):
    pwfile = tmp_path / "admin-password"
    pwfile.write_text(ADMIN_PASSWORD + "\n")
    pwfile.chmod(0o600)
    wrong = []
    cells = 0
    for obj, iface, method, sig, args, action, allowed_answer in TABLE:
        for who, user, granted in principals(member, outsider):
            want = expected_action(action, obj, who)
            allowed = granted == "all" or want in granted
            rc, text = call_as(user, objects[obj], iface, method, sig, args, pwfile)
            cells += 1
            label = f"{method}({', '.join(map(str, args))}) as {who}"
            if user == ADMIN and allowed and "[answered: yes]" not in text:
                wrong.append(f"{label}: polkit's agent never asked for the password:\n{text}")
                continue
            refusal = (f"Not authorized: polkit action 'org.berth.{want}' was denied" in text or
                       f"Interactive authentication required for 'org.berth.{want}'" in text)
            if obj == "transfer" and who == "root":
                if rc != 0:  # root started it: its Cancel ends it
                    wrong.append(f"{label}: root could not cancel its own transfer: {text.strip()[-300:]}")
            elif allowed:
                if refusal or "Not authorized" in text or "Interactive authentication" in text:
                    wrong.append(f"{label}: refused, should be allowed ({want}): {text.strip()[-300:]}")
                elif allowed_answer is None and rc != 0:
                    wrong.append(f"{label}: failed after authorisation: {text.strip()[-300:]}")
                elif allowed_answer and not re.search(allowed_answer, text):
                    wrong.append(f"{label}: expected '{allowed_answer}' after authorisation: "
                                 f"{text.strip()[-300:]}")
            elif rc == 0 or not refusal:
                wrong.append(f"{label}: expected a refusal naming org.berth.{want}, got rc={rc}: "
                             f"{text.strip()[-300:]}")
    assert not wrong, f"{len(wrong)} of {cells} cells wrong:\n" + "\n".join(wrong)
