"""The fetcher's archive child as seen from /proc: the child of a service that installed a seccomp
filter of its own on top of the service's (issue 12, finding 6)."""
import time
from pathlib import Path

HANG_GUARD = 60


def filters(status):
    """(the fields of a /proc/PID/status text, how many seccomp filters the process has)"""
    fields = dict(l.split(":\t", 1) for l in status.splitlines() if ":\t" in l)
    return fields, int(fields.get("Seccomp_filters", "0").strip() or 0)


def sandboxed_child(parent):
    """(pid, status fields) of parent's child once it installed its own filter (one more than the
    parent has itself)."""
    _, own = filters(Path(f"/proc/{parent}/status").read_text())
    end = time.monotonic() + HANG_GUARD
    while time.monotonic() < end:
        for k in Path(f"/proc/{parent}/task/{parent}/children").read_text().split():
            try:
                fields, n = filters(Path(f"/proc/{k}/status").read_text())
            except FileNotFoundError:
                continue
            if n > own:
                return int(k), fields
        time.sleep(0.01)
    raise AssertionError("no sandboxed archive child seen")
