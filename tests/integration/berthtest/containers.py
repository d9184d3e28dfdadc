"""berthctl as the container tests drive it: ok() for a command that must succeed, and the CLI's JSON
views of containers (ls, inspect, state) parsed. berthctl itself is stack.berthctl (runuser for a user)."""
import json

from .stack import berthctl

__all__ = ["berthctl", "ok", "ls", "inspect", "state"]


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
