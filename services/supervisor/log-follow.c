/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <unistd.h>

#include "log-follow.h"
#include "macro.h"
#include "shim-client.h"
#include "shim-protocol.h"

/* A follower's pipe holds this much while its reader is slow; past that the shim catches it up from the
 * log files later (it never blocks on a reader). */
#define LOG_FOLLOW_PIPE_SIZE (1024 * 1024)

int log_follow_begin(Container *c, int *ret_pipe) {
        _cleanup_close_ int rd = -EBADF, wr = -EBADF, unused = -EBADF;
        ShimReply reply;
        int p[2], r;

        *ret_pipe = -EBADF;
        if (c->status == CONTAINER_STOPPED)
                return 0;
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        rd = p[0];
        wr = p[1];
        (void) fcntl(wr, F_SETPIPE_SZ, LOG_FOLLOW_PIPE_SIZE);
        r = shim_call_fds(c->state_dir_fd, SHIM_OP_LOG_FOLLOW, 0, &wr, 1, &reply, &unused);
        if (r < 0)
                /* No shim any more: it stopped meanwhile; the files are all there is. */
                return 0;
        if (reply.error != 0)
                return reply.error == ESRCH ? 0 : -reply.error;
        *ret_pipe = TAKE_FD(rd);
        return 0;
}

int log_open_files(Container *c, int fds[static 2]) {
        static const char *const names[] = { SHIM_LOG_FILE ".1", SHIM_LOG_FILE };
        int n = 0;

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                int fd = openat(c->state_dir_fd, names[i], O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
                if (fd >= 0)
                        fds[n++] = fd;
                else if (errno != ENOENT) {
                        int r = -errno;
                        for (int k = 0; k < n; k++)
                                safe_close(fds[k]);
                        return r;
                }
        }
        return n;
}
