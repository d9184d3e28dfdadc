"""A command on a new pseudo-terminal, as a person at a terminal drives it: wait until the output says
something, type, and collect everything until the command exits and the terminal closes."""
import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time


class Terminal:
    """`Terminal(cmd, user=, size=(rows, cols), controlling=)`: cmd (as `user` via runuser) on a new pty of that size,
    in its own session. .output is everything read so far (bytes)."""

    def __init__(self, cmd, user=None, size=None, controlling=False):
        self.master, slave = pty.openpty()
        if size:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
        if user:
            cmd = ["runuser", "-u", user, "--", *cmd]
        # controlling=True: the pty is also the session's controlling terminal (/dev/tty), as a login's
        # is; what prompts there (pkttyagent) needs it. Typed ^C then signals the foreground group.
        self.proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                                     preexec_fn=(lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0)) if controlling
                                     else None)
        os.close(slave)
        self.output = b""
        self.closed = False

    def _read(self, wait):
        """Read what is there within `wait` seconds; False once the terminal is closed (EOF or EIO)."""
        if self.closed:
            return False
        r, _, _ = select.select([self.master], [], [], wait)
        if r:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: every slave side is closed
                chunk = b""
            if not chunk:
                self.closed = True
                return False
            self.output += chunk
        return True

    def expect(self, text, timeout=60):
        """Read until the output contains `text` (bytes); an AssertionError if it ends or times out first."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert time.monotonic() < deadline, f"no {text!r} within {timeout}s: {self.output[-2000:]!r}"
            assert self._read(1), f"the terminal closed before {text!r}: {self.output[-2000:]!r}"

    def type(self, data):
        os.write(self.master, data)

    def finish(self, timeout=60):
        """Read until the command has exited and nothing more comes (or the terminal closes); its status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = len(self.output)
            if not self._read(1) or (len(self.output) == before and self.proc.poll() is not None):
                break
        status = self.proc.wait(max(1, deadline - time.monotonic()))
        os.close(self.master)
        return status
