/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim-log.h"
#include "shim-protocol.h"

static int followers[SHIM_LOG_FOLLOWERS_MAX] = { -1, -1, -1, -1, -1, -1, -1, -1,
                                                 -1, -1, -1, -1, -1, -1, -1, -1 };

int log_follower_add(int fd, int log_fd, uint64_t log_size) {
        struct stat st, lst;
        char head[64];
        int n;

        /* Only a pipe: the shim writes nothing anywhere else on anyone's behalf. */
        if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode) || (fcntl(fd, F_GETFL) & O_ACCMODE) != O_WRONLY) {
                close(fd);
                return EINVAL;
        }
        if (log_fd < 0 || fstat(log_fd, &lst) < 0) {
                close(fd);
                return ENOENT;
        }
        for (unsigned i = 0; i < SHIM_LOG_FOLLOWERS_MAX; i++) {
                if (followers[i] >= 0)
                        continue;
                (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
                n = snprintf(head, sizeof(head), "%" PRIu64 " %" PRIu64 "\n", (uint64_t) lst.st_ino,
                             log_size);
                if (write(fd, head, (size_t) n) != n) {
                        close(fd);
                        return EIO;
                }
                followers[i] = fd;
                return 0;
        }
        close(fd);
        return EBUSY;
}

void log_followers_write(const struct iovec *parts, int n) {
        size_t total = 0;

        for (int i = 0; i < n; i++)
                total += parts[i].iov_len;
        for (unsigned i = 0; i < SHIM_LOG_FOLLOWERS_MAX; i++) {
                if (followers[i] < 0)
                        continue;
                ssize_t k = writev(followers[i], parts, n);
                if (k < 0 && errno == EINTR)
                        k = writev(followers[i], parts, n);
                if (k != (ssize_t) total) {
                        /* Full (or gone): a partial record would corrupt the stream; the reader sees EOF. */
                        close(followers[i]);
                        followers[i] = -1;
                }
        }
}
