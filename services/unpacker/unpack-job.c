/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "unpack-job.h"

/* Runs in the forked child: put the job's descriptors where the worker expects them and exec it. Only
 * async-signal-safe calls from here on (we were forked from a process with other state). */
_noreturn_ static void child_exec(const char *path, char *const argv[], int blob_fd, int fs_fd, int sock,
                                  int implied_fd) {
        int src[] = { blob_fd, fs_fd, sock, implied_fd };
        int dst[] = { UNPACK_WORKER_FD_BLOB, UNPACK_WORKER_FD_FS, UNPACK_WORKER_FD_SOCK,
                      UNPACK_WORKER_FD_IMPLIED };
        int moved[ELEMENTSOF(src)] = { -EBADF, -EBADF, -EBADF, -EBADF };
        UnpackReport report = {};
        int null_fd;

        /* Dies with the unpacker even before the worker sets this itself (sandbox_enter). */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
                _exit(EXIT_FAILURE);

        /* First out of the way (above every target), then into place: dup2() clears CLOEXEC on the
         * copies the worker keeps; everything else is CLOEXEC and goes with the exec. */
        for (size_t i = 0; i < ELEMENTSOF(src); i++) {
                moved[i] = src[i] >= 0 ? fcntl(src[i], F_DUPFD_CLOEXEC, 16) : -EBADF;
                if (src[i] >= 0 && moved[i] < 0)
                        goto fail;
        }
        for (size_t i = 0; i < ELEMENTSOF(src); i++)
                if (moved[i] >= 0 && dup2(moved[i], dst[i]) < 0)
                        goto fail;
        /* SECURITY (issue 12, f5): stderr is the service's log stream; a compromised worker must not
         * write into it (forged log lines). A read-only /dev/null keeps the fd number taken, so no file
         * the worker opens later can become fd 2. Errors travel in the report. */
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null_fd < 0 || dup2(null_fd, STDERR_FILENO) < 0)
                goto fail;

        execv(path, argv);
fail:
        report.error = errno > 0 ? errno : EIO;
        report.failure = UNPACK_FAILURE_IO;
        /* No stdio formatting here; the parent turns this into a full line. */
        strncpy(report.message, "Failed to start the unpack worker " UNPACK_WORKER_PATH,
                sizeof(report.message) - 1);
        if (write(moved[2] >= 0 ? moved[2] : sock, &report, sizeof(report)) < 0)
                _exit(EXIT_FAILURE);
        _exit(EXIT_FAILURE);
}

int unpack_child_spawn(const char *fs_path, int fs_fd, int blob_fd, const ExtractRequest *req,
                       pid_t *ret_pid, int *ret_sock) {
        /* Tests substitute a worker (a lying one, to check that we re-hash ourselves); set only by
         * whoever starts the service, like BERTH_STATE_DIR. */
        const char *worker = secure_getenv("BERTH_UNPACK_WORKER") ?: UNPACK_WORKER_PATH;
        char compression[16], max_bytes[24], max_entries[24];
        char *argv[] = {
                (char *) "berth-unpack-worker",
                (char *) fs_path,
                (char *) req->layer_digest,
                (char *) req->diff_id,
                compression,
                max_bytes,
                max_entries,
                (char *) (req->implied_fd > 0 ? "1" : "0"),
                NULL,
        };
        int pair[2];
        pid_t pid;

        (void) snprintf(compression, sizeof(compression), "%d", (int) req->compression);
        (void) snprintf(max_bytes, sizeof(max_bytes), "%" PRIu64, req->limits.max_uncompressed_bytes);
        (void) snprintf(max_entries, sizeof(max_entries), "%" PRIu64, req->limits.max_entries);

        /* SEQPACKET: one record is one message, and it stays readable after the child exited. */
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
                return -errno;

        pid = fork();
        if (pid < 0) {
                safe_close(pair[0]);
                safe_close(pair[1]);
                return -errno;
        }
        if (pid == 0)
                child_exec(worker, argv, blob_fd, fs_fd, pair[1],
                           req->implied_fd > 0 ? req->implied_fd : -EBADF);

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
