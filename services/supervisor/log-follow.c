/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log-follow.h"
#include "macro.h"
#include "shim-client.h"
#include "shim-protocol.h"

/* A follower's pipe holds this much while its reader is slow; the shim drops a follower it would have to
 * wait for (it never blocks on a reader). */
#define LOG_FOLLOW_PIPE_SIZE (1024 * 1024)

static int call_with_fd(int state_dir_fd, int fd, ShimReply *ret) {
        ShimRequest q = { .magic = SHIM_PROTOCOL_MAGIC,
                          .version = SHIM_PROTOCOL_VERSION,
                          .op = SHIM_OP_LOG_FOLLOW };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = &q, .iov_len = sizeof(q) };
        struct msghdr mh = { .msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        _cleanup_close_ int sock = shim_connect(state_dir_fd);
        struct cmsghdr *cm;
        int r;

        if (sock < 0)
                return sock;
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof(int));
        if (sendmsg(sock, &mh, MSG_NOSIGNAL) != (ssize_t) sizeof(q))
                return -errno ?: -EIO;
        for (;;) {
                struct pollfd p = { .fd = sock, .events = POLLIN };
                r = poll(&p, 1, SHIM_CALL_TIMEOUT_SEC * 1000);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return r < 0 ? -errno : -ETIMEDOUT;
                r = shim_receive(sock, ret);
                if (r == -EAGAIN)
                        continue;
                if (r < 0)
                        return r;
                if (ret->type == SHIM_MSG_REPLY)
                        return 0;
        }
}

int log_follow_begin(Container *c, int *ret_pipe) {
        _cleanup_close_ int rd = -EBADF, wr = -EBADF;
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
        r = call_with_fd(c->state_dir_fd, wr, &reply);
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
