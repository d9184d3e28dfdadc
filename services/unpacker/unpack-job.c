/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"
#include "unpack-job.h"

_noreturn_ static void child_main(const char *fs_path, int fs_fd, int blob_fd, int sock,
                                  const ExtractRequest *req) {
        UnpackReport report = {};
        ExtractResult result;
        /* The implied-directory list (a memfd, see implied-dirs.h) is the only other fd it keeps. */
        int keep[] = { blob_fd, sock, req->implied_fd > STDERR_FILENO ? req->implied_fd : -EBADF };
        char step[sizeof(report.message) - 64] = "";
        int root_fd = -EBADF, r;

        log_set_prefix("berth-unpacker[child]");

        /* SECURITY: sandboxed before the first byte of the blob is read: decompression and tar parsing
         * (the attack surface) only ever run confined. */
        r = sandbox_enter(fs_path, fs_fd, keep, ELEMENTSOF(keep), &root_fd, step, sizeof(step));
        if (r < 0) {
                report.error = -r;
                report.failure = UNPACK_FAILURE_IO;
                errno = -r;
                (void) snprintf(report.message, sizeof(report.message),
                                "Failed to set up the unpack sandbox: %s", step[0] ? step : strerror(-r));
        } else {
                r = layer_extract(blob_fd, root_fd, req, &result);
                if (r >= 0 && syncfs(root_fd) < 0) {
                        r = -errno;
                        result.failure = UNPACK_FAILURE_IO;
                        (void) snprintf(result.message, sizeof(result.message),
                                        "Failed to sync the snapshot: %m");
                }
                report.error = r < 0 ? -r : 0;
                report.failure = r < 0 ? (int32_t) result.failure : UNPACK_OK;
                report.size = result.uncompressed_size;
                report.entries = result.entries;
                memcpy(report.message, result.message, sizeof(report.message));
        }
        report.message[sizeof(report.message) - 1] = '\0';

        if (write(sock, &report, sizeof(report)) != (ssize_t) sizeof(report))
                _exit(EXIT_FAILURE);
        _exit(report.error == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}

int unpack_child_spawn(const char *fs_path, int fs_fd, int blob_fd, const ExtractRequest *req,
                       pid_t *ret_pid, int *ret_sock) {
        int pair[2];
        pid_t pid;

        /* SEQPACKET: one record is one message, and it stays readable after the child exited. */
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
                return -errno;

        pid = fork();
        if (pid < 0) {
                safe_close(pair[0]);
                safe_close(pair[1]);
                return -errno;
        }
        if (pid == 0) {
                safe_close(pair[0]);
                child_main(fs_path, fs_fd, blob_fd, pair[1], req);
        }

        safe_close(pair[1]);
        *ret_pid = pid;
        *ret_sock = pair[0];
        return 0;
}

int unpack_child_read_report(int sock, UnpackReport *ret) {
        ssize_t n;

        n = recv(sock, ret, sizeof(*ret), MSG_DONTWAIT);
        if (n < 0)
                return errno == EAGAIN ? -ENODATA : -errno;
        /* SECURITY: the child is not trusted to be well-formed: exact size, bounded string. */
        if (n != (ssize_t) sizeof(*ret))
                return -ENODATA;
        ret->message[sizeof(ret->message) - 1] = '\0';
        if (ret->failure < 0 || ret->failure >= _UNPACK_FAILURE_MAX || ret->error < 0)
                return -EBADMSG;
        return 0;
}
