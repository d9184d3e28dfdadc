/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* berth-unpack-worker: the sandboxed half of one unpack job. berth-unpacker forks and execs it for
 * every layer, so that libarchive and its decompressors (and what they pull in: libxml2, ICU, …) and
 * libseccomp are mapped only here, for the length of one job, never in the long-lived service.
 *
 * Not a command for people: the unpacker passes the job on fixed descriptors (UNPACK_WORKER_FD_*,
 * unpack-job.h) and in argv, and reads one UnpackReport from the socket. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"
#include "unpack-job.h"

static int parse_u64(const char *s, uint64_t *ret) {
        char *end = NULL;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || !end || *end || s[0] == '-' || !s[0])
                return -EINVAL;
        *ret = v;
        return 0;
}

_noreturn_ static void report_and_exit(int sock, UnpackReport *report) {
        report->message[sizeof(report->message) - 1] = '\0';
        if (write(sock, report, sizeof(*report)) != (ssize_t) sizeof(*report))
                _exit(EXIT_FAILURE);
        _exit(report->error == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}

int main(int argc, char *argv[]) {
        const int blob_fd = UNPACK_WORKER_FD_BLOB, sock = UNPACK_WORKER_FD_SOCK;
        ExtractRequest req = {};
        UnpackReport report = {};
        ExtractResult result = {};
        uint64_t compression;
        struct stat st;
        int root_fd = -EBADF, r;

        log_set_prefix("berth-unpacker[worker]");

        /* The socket must be ours before anything can be reported on it. */
        if (fstat(sock, &st) < 0 || !S_ISSOCK(st.st_mode)) {
                fprintf(stderr, "berth-unpack-worker: runs only as berth-unpacker's child.\n");
                return EXIT_FAILURE;
        }
        report.failure = UNPACK_FAILURE_IO;
        report.error = EINVAL;
        /* argv: FS_PATH LAYER_DIGEST DIFF_ID COMPRESSION MAX_BYTES MAX_ENTRIES WITH_IMPLIED */
        if (argc != 8 || parse_u64(argv[4], &compression) < 0 || compression > INT32_MAX ||
            parse_u64(argv[5], &req.limits.max_uncompressed_bytes) < 0 ||
            parse_u64(argv[6], &req.limits.max_entries) < 0 ||
            !(streq(argv[7], "0") || streq(argv[7], "1"))) {
                (void) snprintf(report.message, sizeof(report.message),
                                "The unpack worker was started with bad arguments.");
                report_and_exit(sock, &report);
        }
        req.layer_digest = argv[2];
        req.diff_id = argv[3];
        req.compression = (LayerCompression) compression;
        req.implied_fd = streq(argv[7], "1") ? UNPACK_WORKER_FD_IMPLIED : 0;

        /* SECURITY: sandboxed before the first byte of the blob is read: decompression and tar parsing
         * (the attack surface) only ever run confined. The implied-directory list (a memfd, see
         * implied-dirs.h) is the only other fd it keeps. */
        int keep[] = { blob_fd, sock, req.implied_fd > STDERR_FILENO ? req.implied_fd : -EBADF };
        char step[sizeof(report.message) - 64] = "";
        r = sandbox_enter(argv[1], UNPACK_WORKER_FD_FS, keep, ELEMENTSOF(keep), &root_fd, step,
                          sizeof(step));
        if (r < 0) {
                report.error = -r;
                report.failure = UNPACK_FAILURE_IO;
                errno = -r;
                (void) snprintf(report.message, sizeof(report.message),
                                "Failed to set up the unpack sandbox: %s", step[0] ? step : strerror(-r));
                report_and_exit(sock, &report);
        }

        r = layer_extract(blob_fd, root_fd, &req, &result);
        if (r >= 0 && syncfs(root_fd) < 0) {
                r = -errno;
                result.failure = UNPACK_FAILURE_IO;
                (void) snprintf(result.message, sizeof(result.message), "Failed to sync the snapshot: %m");
        }
        report.error = r < 0 ? -r : 0;
        report.failure = r < 0 ? (int32_t) result.failure : UNPACK_OK;
        report.size = result.uncompressed_size;
        report.entries = result.entries;
        memcpy(report.message, result.message, sizeof(report.message));
        report_and_exit(sock, &report);
}
