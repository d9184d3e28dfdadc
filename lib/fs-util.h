/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Small fd-based file helpers shared by the services' stores. */

/* Writes all of buf, retrying on EINTR and short writes. */
int loop_write(int fd, const void *buf, size_t size);

/* Reads size bytes at offset, retrying on EINTR and short reads. Returns the number of bytes read (less
 * than size only at end of file) or -errno. Does not move the file offset. */
ssize_t pread_full(int fd, void *buf, size_t size, off_t offset);

/* Reads a whole regular file from fd (from offset 0, with pread(): the file offset is neither used nor
 * moved) into a malloc'd, NUL-terminated buffer.
 * Refuses anything but a regular file (-EBADFD) and a file larger than max_size (-EFBIG), both checked
 * on the fd before reading. *ret_size (optional) is the number of bytes read. */
int read_regular_file_fd(int fd, size_t max_size, char **ret, size_t *ret_size);

/* Replaces dir_fd/name atomically and durably: writes a temp file ".#<name>.<random>.tmp" in dir_fd
 * (O_EXCL, O_NOFOLLOW, the given mode), fsyncs it, renames it over name, fsyncs the directory. On
 * failure before the rename, the temp file is removed. */
int write_file_atomic_at(int dir_fd, const char *name, const void *data, size_t size, mode_t mode);

/* The same, atomic but not durable: no fsync, for state that is worthless after a crash of the machine
 * (everything under /run: the containers it describes died with the machine; or a --rm container's
 * record). A killed process still leaves the old or the new file, never a partial one: rename() is
 * atomic and the page cache is shared. Saves two disk flushes (0.5–10 ms each on a busy disk). */
int write_file_atomic_nosync_at(int dir_fd, const char *name, const void *data, size_t size, mode_t mode);
