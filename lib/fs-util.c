/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf() */
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fs-util.h"
#include "macro.h"

int loop_write(int fd, const void *buf, size_t size) {
        const uint8_t *p = buf;

        while (size > 0) {
                ssize_t k = write(fd, p, size);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                size -= (size_t) k;
        }
        return 0;
}

ssize_t pread_full(int fd, void *buf, size_t size, off_t offset) {
        uint8_t *p = buf;
        size_t got = 0;

        while (got < size) {
                ssize_t k = pread(fd, p + got, size - got, offset + (off_t) got);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                got += (size_t) k;
        }
        return (ssize_t) got;
}

int read_regular_file_fd(int fd, size_t max_size, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        ssize_t got;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if ((uint64_t) st.st_size > max_size)
                return -EFBIG;
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        /* Never more than fstat() said, even if the file grows meanwhile. */
        got = pread_full(fd, buf, (size_t) st.st_size, 0);
        if (got < 0)
                return (int) got;
        buf[got] = '\0';
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = (size_t) got;
        return 0;
}

static int write_atomic(int dir_fd, const char *name, const void *data, size_t size, mode_t mode,
                        bool sync) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (asprintf_safe(&tmp, ".#%s.%08x.tmp", name, arc4random()) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, mode);
        if (fd < 0)
                return -errno;
        r = loop_write(fd, data, size);
        /* Exactly mode, whatever the umask. */
        if (r >= 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r >= 0 && sync && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && renameat(dir_fd, tmp, dir_fd, name) < 0)
                r = -errno;
        if (r < 0) {
                /* Undo: no temp file is left behind. */
                (void) unlinkat(dir_fd, tmp, 0);
                return r;
        }
        /* The rename is durable only once the directory is. */
        if (sync && fsync(dir_fd) < 0)
                return -errno;
        return 0;
}

int write_file_atomic_at(int dir_fd, const char *name, const void *data, size_t size, mode_t mode) {
        return write_atomic(dir_fd, name, data, size, mode, true);
}

int write_file_atomic_nosync_at(int dir_fd, const char *name, const void *data, size_t size, mode_t mode) {
        return write_atomic(dir_fd, name, data, size, mode, false);
}
