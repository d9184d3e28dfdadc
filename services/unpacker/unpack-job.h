/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "extract.h"

/* What the sandboxed child reports back over its SOCK_SEQPACKET socketpair: one record, STYLE rule 3. */
typedef struct UnpackReport {
        int32_t error;   /* 0 or a positive errno */
        int32_t failure; /* UnpackFailure */
        uint64_t size;
        uint64_t entries;
        char message[UNPACK_MESSAGE_MAX];
} UnpackReport;

/* The worker binary (unpack-worker.c) and the descriptors it finds the job on. */
#define UNPACK_WORKER_PATH BERTH_LIBEXECDIR "/berth-unpack-worker"
#define UNPACK_WORKER_FD_BLOB 3
#define UNPACK_WORKER_FD_FS 4
#define UNPACK_WORKER_FD_SOCK 5
#define UNPACK_WORKER_FD_IMPLIED 6

/* Forks a child that execs berth-unpack-worker, which sandboxes itself (sandbox_enter()) and then
 * extracts blob_fd into fs_fd (fs_path is the same directory's path, for its pivot_root): libarchive
 * is loaded only there. Returns the child's pid and our end of the socketpair (non-blocking, CLOEXEC). */
int unpack_child_spawn(const char *fs_path, int fs_fd, int blob_fd, const ExtractRequest *req,
                       pid_t *ret_pid, int *ret_sock);

/* Reads the record once the child exited; -ENODATA if it sent none (it crashed or was killed). */
int unpack_child_read_report(int sock, UnpackReport *ret);
