"""berthctl's two parts (cli/berthctl.c): the binary links libc and libsystemd only and runs exec, attach and
top itself; every other command is in berthctl-commands.so, which it loads for them. What that must not
change: every command and global option works as before, exec's options reach the container byte for byte
(the front writes their JSON without json-glib: lib/json-text.c), and a broken or foreign module is a clear
error, never a crash.
"""
import json
import re
import shutil
import subprocess

import pytest

from berthtest import stack
from berthtest.containers import berthctl, imported_busybox, ok

IMAGE = "localhost/berth-cli-front-test:latest"
HEAVY = ("libglib-2.0", "libgobject-2.0", "libgio-2.0", "libjson-glib-1.0", "libcrypto")


def dynamic_needed(path):
    """The NEEDED libraries of an ELF file, as readelf -d prints them."""
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\).*\[(.+?)\]", out)


@pytest.fixture(scope="module")
def container(tmp_path_factory, member):
    with imported_busybox(tmp_path_factory, IMAGE):
        names = {"root": "cli-front-root", "member": "cli-front-member"}
        ok(berthctl("run", "-d", "--name", names["root"], IMAGE, "sleep", "1000"))
        ok(berthctl("run", "-d", "--name", names["member"], IMAGE, "sleep", "1000", user=member))
        yield names
        for name in names.values():
            berthctl("rm", "-f", name)


def installed_module():
    found = sorted(stack.PREFIX.glob("lib/**/berth/berthctl-commands.so"))
    assert len(found) == 1, found
    return found[0]


def test_the_binary_links_no_glib_and_its_module_the_rest():
    needed = dynamic_needed(stack.BERTHCTL)
    assert "libsystemd.so.0" in needed, needed
    assert not [n for n in needed if n.startswith(HEAVY)], needed
    # The module is where GLib and json-glib went: it is the rest of berthctl, not an empty shell.
    module_needed = dynamic_needed(installed_module())
    assert "libjson-glib-1.0.so.0" in module_needed and "libglib-2.0.so.0" in module_needed, module_needed


def test_global_options_and_errors_are_the_same_on_both_sides(container):
    # Global options before a front command and before a module command.
    ok(berthctl("--json", "-q", "exec", container["root"], "true"))
    rows = json.loads(ok(berthctl("--json", "ls", "-a")).stdout)
    assert container["root"] in {r["Name"] for r in rows}
    p = stack.run([str(stack.BERTHCTL), "--version"])
    assert p.returncode == 0 and p.stdout.startswith("berthctl "), p
    p = stack.run([str(stack.BERTHCTL), "--help"])
    assert p.returncode == 0 and "exec" in p.stdout and "images" in p.stdout, p
    # No command: the help, as a failure; an unknown command or option: one line, a failure.
    p = stack.run([str(stack.BERTHCTL)])
    assert p.returncode == 1 and "Commands:" in p.stdout, p
    p = berthctl("frobnicate")
    assert p.returncode == 1 and "unknown command 'frobnicate'" in p.stderr, p
    p = berthctl("--frobnicate", "ls")
    assert p.returncode == 1 and "frobnicate" in p.stderr, p
    # A failure of the front's own commands keeps exec's exit status convention (125).
    p = berthctl("exec", "no-such-container-xyz", "true")
    assert p.returncode == 125 and "no-such-container-xyz" in p.stderr, p


HOSTILE = [
    'say "hi"',
    "back\\slash\\",
    "new\nline\ttab\rcr",
    "\x1b[2J\x07\x7f",
    "caf\u00e9 \u20ac \U0001f433 \u2028",
    '","detach":true,"args":["/bin/false"],"x":"',
    "]}",
    "\\u0041",
    "",
]


@pytest.mark.parametrize("who", ["root", "member"])
def test_exec_passes_hostile_arguments_env_and_workdir_exactly(container, member, who):
    user = member if who == "member" else None
    name = container[who]
    workdir = "/tmp/d \"q\" \\ é"
    ok(berthctl("exec", name, "mkdir", "-p", workdir, user=user))
    script = 'for a; do printf "%s\\0" "$a"; done; printf "%s\\0" "$X" "$(pwd)"'
    # The supervisor refuses control bytes in the environment (S14); everything else goes through.
    env_value = HOSTILE[0] + HOSTILE[1] + HOSTILE[4] + HOSTILE[5]
    cmd = [str(stack.BERTHCTL), "--no-ask-password", "exec", "-e", "X=" + env_value, "-w", workdir,
           name, "sh", "-c", script, "sh", *HOSTILE]
    if user:
        cmd = ["runuser", "-u", user, "--"] + cmd
    p = subprocess.run(cmd, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    got = p.stdout.split(b"\0")[:-1]
    want = [h.encode() for h in HOSTILE] + [env_value.encode(), workdir.encode()]
    assert got == want


def test_exec_refuses_arguments_that_are_not_utf8(container):
    p = subprocess.run([str(stack.BERTHCTL), "--no-ask-password", "exec", container["root"], "touch",
                        b"/tmp/not-\xff-utf8"], capture_output=True, timeout=60)
    assert p.returncode == 125 and b"valid UTF-8" in p.stderr, p
    # Nothing ran.
    assert ok(berthctl("exec", container["root"], "ls", "/tmp")).stdout.count("not-") == 0


@pytest.mark.skipif(not shutil.which("cc"), reason="needs a C compiler to build a foreign module")
@pytest.mark.parametrize("body,message", [
    # Another build's module (another ABI number), and a library that is not berthctl's at all.
    ("struct { unsigned abi; void *h, *r; } berthctl_commands = { 999, 0, 0 };", "does not belong"),
    ("int something_else = 1;", "does not belong"),
    # Not a library at all.
    (None, "cannot load its commands"),
])
def test_a_foreign_module_is_refused_with_a_clear_error(tmp_path, body, message):
    """berthctl loads the module beside itself first (a build tree, a copy with its module): a copy of
    the installed binary next to a foreign one."""
    copy = tmp_path / "berthctl"
    shutil.copy2(stack.BERTHCTL, copy)
    module = tmp_path / "berthctl-commands.so"
    if body is None:
        module.write_text("not an ELF file\n")
    else:
        (tmp_path / "fake.c").write_text(body + "\n")
        subprocess.run(["cc", "-shared", "-fPIC", "-o", str(module), str(tmp_path / "fake.c")], check=True,
                       capture_output=True)
    p = stack.run([str(copy), "--no-ask-password", "ls"])
    assert p.returncode == 1 and message in p.stderr, p
    assert body is None or "reinstall" in p.stderr, p
    # The front's own commands do not need the module at all.
    p = stack.run([str(copy), "--no-ask-password", "exec", "no-such-container-xyz", "true"])
    assert p.returncode == 125 and "no-such-container-xyz" in p.stderr and "module" not in p.stderr, p
    # Without a module beside it, the copy uses the installed one.
    module.unlink()
    assert stack.run([str(copy), "--no-ask-password", "ls"]).returncode == 0
