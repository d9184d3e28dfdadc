/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "macro.h"
#include "shim-client.h"

int shim_connect(int state_dir_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;

        /* The state directory's fd names it; /proc/self/fd keeps sun_path short and resolves nothing
         * a container could influence (the directory is root's, 0700). */
        snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/" SHIM_SOCKET_FILE, state_dir_fd);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* One message, and the one fd passed with it into *ret_fd (-EBADF if none) or closed without ret_fd. */
static int receive(int fd, ShimReply *ret, int *ret_fd) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = ret, .iov_len = sizeof(*ret) };
        struct msghdr mh = { .msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        _cleanup_close_ int got = -EBADF;
        ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                        memcpy(&got, CMSG_DATA(c), sizeof(int));
        if (n == 0)
                return -EPIPE;
        if (n != (ssize_t) sizeof(*ret) || ret->magic != SHIM_PROTOCOL_MAGIC ||
            ret->version != SHIM_PROTOCOL_VERSION)
                return -EBADMSG;
        /* Every field within the protocol before anyone acts on it (a pid, a status, an exit code). */
        if ((ret->type != SHIM_MSG_REPLY && ret->type != SHIM_MSG_EVENT) || ret->error < 0 ||
            ret->status < SHIM_STATUS_CREATED || ret->status > SHIM_STATUS_STOPPED ||
            ret->reason > SHIM_REASON_EXEC_FAILED || ret->pid < 0 || ret->exit_code < 0 ||
            ret->exit_code > 255)
                return -EBADMSG;
        ret->message[sizeof(ret->message) - 1] = 0;
        if (ret_fd)
                *ret_fd = TAKE_FD(got);
        return 0;
}

int shim_receive(int fd, ShimReply *ret) {
        return receive(fd, ret, NULL);
}

static int call(int state_dir_fd, uint32_t op, int signal, uint32_t flags, const int *fds, size_t n_fds,
                ShimReply *ret, int *ret_fd) {
        ShimRequest q = {
                .magic = SHIM_PROTOCOL_MAGIC,
                .version = SHIM_PROTOCOL_VERSION,
                .op = op,
                .signal = signal,
                .flags = flags,
        };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * SHIM_CALL_FDS_MAX)];
        } control = {};
        struct iovec iov = { .iov_base = &q, .iov_len = sizeof(q) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (n_fds > SHIM_CALL_FDS_MAX)
                return -E2BIG;
        fd = shim_connect(state_dir_fd);
        if (fd < 0)
                return fd;
        if (n_fds > 0) {
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }
        if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t) sizeof(q))
                return -errno ?: -EIO;
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                _cleanup_close_ int got = -EBADF;

                r = poll(&p, 1, SHIM_CALL_TIMEOUT_SEC * 1000);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return r < 0 ? -errno : -ETIMEDOUT;
                r = receive(fd, ret, &got);
                if (r == -EAGAIN)
                        continue;
                if (r < 0)
                        return r;
                if (ret->type == SHIM_MSG_REPLY) {
                        if (ret_fd)
                                *ret_fd = TAKE_FD(got);
                        return 0;
                }
                /* An event sent before our reply: skip it, the reply follows. */
        }
}

int shim_call(int state_dir_fd, uint32_t op, int signal, uint32_t flags, ShimReply *ret) {
        return call(state_dir_fd, op, signal, flags, NULL, 0, ret, NULL);
}

int shim_call_fds(int state_dir_fd, uint32_t op, uint32_t flags, const int *fds, size_t n_fds,
                  ShimReply *ret, int *ret_fd) {
        *ret_fd = -EBADF;
        return call(state_dir_fd, op, 0, flags, fds, n_fds, ret, ret_fd);
}
