#!/usr/bin/python3
"""Run a command on a new pseudo-terminal, answer one password prompt, and pass its exit status on.

Used inside the booted test system for what a human at a terminal does: a polkit text agent
(pkttyagent) asks for an administrator's password on the controlling terminal, which no pipe can
answer. Usage: pty-answer.py PASSWORD_FILE COMMAND ARG...  The transcript goes to stdout.
"""
import os
import pty
import re
import select
import sys
import termios
import time

PROMPT = re.compile(rb"[Pp]assword: ?$")
TIMEOUT = 120


def main():
    password = open(sys.argv[1], "rb").read().strip()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(sys.argv[2], sys.argv[2:])
    transcript, answered, deadline = b"", False, time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        transcript += chunk
        if not answered and PROMPT.search(transcript):
            # The agent prints its prompt, then turns echo off with TCSAFLUSH, which discards input
            # already typed: answer only once echo is off (the master sees the terminal's modes).
            while time.monotonic() < deadline and termios.tcgetattr(fd)[3] & termios.ECHO:
                time.sleep(0.01)
            os.write(fd, password + b"\n")
            answered = True
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(transcript.decode(errors="replace"))
    sys.stdout.write("\n[answered: %s]\n" % ("yes" if answered else "no"))
    sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


if __name__ == "__main__":
    main()
