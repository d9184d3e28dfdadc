"""Subprocess helpers for the external tools the fixtures drive.

Every call has a timeout; failures raise :class:`ToolError` carrying the
command, exit status and output so pytest shows why a tool failed.
"""

import atexit
import json
import os
import shutil
import socket
import subprocess
import tempfile

__all__ = ["ToolError", "run", "skopeo", "umoci", "free_port", "have_tools",
           "empty_authfile"]

DEFAULT_TIMEOUT = 300


class ToolError(RuntimeError):
    """A tool exited non-zero. ``.result`` is the CompletedProcess."""

    def __init__(self, result):
        self.result = result
        super().__init__("command %r failed with exit status %d\nstdout: %s\nstderr: %s" % (
            result.args, result.returncode, result.stdout, result.stderr))


def run(args, timeout=DEFAULT_TIMEOUT, check=True, **kw):
    """Run ``args`` capturing text output; raise ToolError if ``check``.

    Returns the :class:`subprocess.CompletedProcess`.
    """
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                            timeout=timeout, **kw)
    if check and result.returncode != 0:
        raise ToolError(result)
    return result


_STATE_DIR = None


def _state_dir():
    """A private temp dir (removed at exit) holding auth.json and policy.json."""
    global _STATE_DIR
    if _STATE_DIR is None or not os.path.isdir(_STATE_DIR):
        _STATE_DIR = tempfile.mkdtemp(prefix="berthtest-tools-")
        with open(os.path.join(_STATE_DIR, "auth.json"), "w") as f:
            json.dump({"auths": {}}, f)
        with open(os.path.join(_STATE_DIR, "policy.json"), "w") as f:
            json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)
        atexit.register(shutil.rmtree, _STATE_DIR, True)
    return _STATE_DIR


def empty_authfile():
    """Path of an empty containers auth file. Pass it as ``--authfile`` so
    skopeo never picks up credentials stored on the host."""
    return os.path.join(_state_dir(), "auth.json")


def skopeo(*args, timeout=DEFAULT_TIMEOUT, check=True):
    """Run ``skopeo ARGS`` with an insecureAcceptAnything signature policy.

    Example: ``skopeo("inspect", "--raw", "--tls-verify=false", "docker://h/r:t")``.
    """
    policy = os.path.join(_state_dir(), "policy.json")
    return run(["skopeo", "--policy", policy] + list(args), timeout=timeout, check=check)


def umoci(*args, timeout=DEFAULT_TIMEOUT, check=True):
    """Run ``umoci ARGS``."""
    return run(["umoci"] + list(args), timeout=timeout, check=check)


def free_port():
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    Another process may still grab it before the caller binds: callers
    retry on "address already in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def have_tools(*names):
    """True if every named executable is on PATH."""
    return all(shutil.which(n) for n in names)
