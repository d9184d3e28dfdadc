"""berthctl as the container tests drive it: ok() for a command that must succeed, and the CLI's JSON
views of containers (ls, inspect, state) parsed. berthctl itself is stack.berthctl (runuser for a user)."""
import json
import subprocess
from contextlib import contextmanager

from . import stack
from .stack import berthctl

__all__ = ["berthctl", "ok", "ls", "inspect", "state", "busybox_archive", "imported_busybox"]


def ok(p):
    """p, a finished berthctl, after asserting that it succeeded (its output in the message if not)."""
    assert p.returncode == 0, f"rc={p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def ls(user=None, *extra):
    """`berthctl ls -a --json [extra]` as `user`, as {name: record}."""
    return {c["Name"]: c for c in json.loads(ok(berthctl("ls", "-a", "--json", *extra, user=user)).stdout)}


def inspect(name, user=None):
    """`berthctl inspect NAME` as `user`, parsed: the container's one document."""
    return json.loads(ok(berthctl("inspect", name, user=user)).stdout)[0]


def state(name, user=None):
    """inspect()'s "State"."""
    return inspect(name, user)["State"]


def busybox_archive(path, ref):
    """tools/busybox-image (Debian's busybox-static) as the image `ref`, written to the archive `path`."""
    subprocess.run([str(stack.TOP / "tools" / "busybox-image"), "--name", ref, str(path)], check=True,
                   capture_output=True)
    return path


@contextmanager
def imported_busybox(tmp_path_factory, ref, *, remove_containers=False, cli=berthctl):
    """The busybox image `ref` imported as root; at exit every container of `ref` removed (remove_containers),
    then the image. `cli` runs berthctl (a test module's own, or stack.berthctl)."""
    ok(cli("images", "import", str(busybox_archive(tmp_path_factory.mktemp("busybox") / "busybox.tar", ref))))
    try:
        yield ref
    finally:
        if remove_containers:
            for c in json.loads(ok(cli("ls", "-a", "--json")).stdout):
                if c["Image"] == ref:
                    cli("rm", "-f", c["Name"])
        cli("images", "rm", ref)
