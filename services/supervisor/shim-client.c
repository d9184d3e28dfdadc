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

int shim_receive(int fd, ShimReply *ret) {
        ssize_t n = recv(fd, ret, sizeof(*ret), MSG_DONTWAIT);

        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
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
        return 0;
}

static int call(int state_dir_fd, const ShimRequest *q, int pass_fd, ShimReply *ret) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = (void *) q, .iov_len = sizeof(*q) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        _cleanup_close_ int fd = shim_connect(state_dir_fd);
        int r;

        if (fd < 0)
                return fd;
        if (pass_fd >= 0) {
                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof(control.buf);
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
        }
        if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t) sizeof(*q))
                return -errno ?: -EIO;
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                r = poll(&p, 1, SHIM_CALL_TIMEOUT_SEC * 1000);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return r < 0 ? -errno : -ETIMEDOUT;
                r = shim_receive(fd, ret);
                if (r == -EAGAIN)
                        continue;
                if (r < 0)
                        return r;
                if (ret->type == SHIM_MSG_REPLY)
                        return 0;
                /* An event sent before our reply: skip it, the reply follows. */
        }
}

int shim_call(int state_dir_fd, uint32_t op, int signal, uint32_t flags, ShimReply *ret) {
        ShimRequest q = {
                .magic = SHIM_PROTOCOL_MAGIC,
                .version = SHIM_PROTOCOL_VERSION,
                .op = op,
                .signal = signal,
                .flags = flags,
        };

        return call(state_dir_fd, &q, -EBADF, ret);
}

int shim_call_with_fd(int state_dir_fd, uint32_t op, int fd, ShimReply *ret) {
        ShimRequest q = { .magic = SHIM_PROTOCOL_MAGIC, .version = SHIM_PROTOCOL_VERSION, .op = op };

        if (fd < 0)
                return -EBADF;
        return call(state_dir_fd, &q, fd, ret);
}
