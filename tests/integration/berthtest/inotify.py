"""Waiting for a file to grow, on inotify events (ctypes over libc: the stdlib has no inotify)."""
import ctypes
import ctypes.util
import os
import select
import struct

IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_DELETE_SELF = 0x00000400
HANG_GUARD = 120

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def wait_file_size(path, at_least, timeout=HANG_GUARD):
    """Block until the regular file at path holds at least at_least bytes. Every check follows a write
    to it (or the start); timeout only guards against a hang."""
    fd = _libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1")
    try:
        if _libc.inotify_add_watch(fd, os.fsencode(path), IN_MODIFY | IN_CLOSE_WRITE | IN_DELETE_SELF) < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
        while True:
            size = os.stat(path).st_size  # after the watch exists: no write can slip between
            if size >= at_least:
                return size
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                raise AssertionError(f"{path} stayed at {size} bytes, below {at_least}")
            data = os.read(fd, 65536)
            off = 0
            while off < len(data):
                _, mask, _, name_len = struct.unpack_from("iIII", data, off)
                off += 16 + name_len
                if mask & IN_DELETE_SELF:
                    raise AssertionError(f"{path} was removed at {size} bytes")
    finally:
        os.close(fd)
