/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "container.h"

/* What a creating process does before and at its end, the same for a creation (container-create.c) and
 * for a restart by the policy (restart-policy.c): a clean signal state for the container, shim.sock
 * bound anew, and the execve() that turns the creating process into the container's berth-shim. */

/* The supervisor's event loop blocks SIGTERM, SIGINT and SIGCHLD (signalfd) and ignores SIGPIPE. Mask and
 * dispositions survive clone() and execve(): a container must start with neither, or its init could
 * never be stopped by a signal it handles. */
void shim_launch_reset_signals(void);

/* A listening socket on <state dir>/shim.sock (an old one removed); the fd or -errno. */
int shim_launch_bind(int dir_fd);

typedef struct ShimLaunch {
        const char *id;
        pid_t init_pid;
        int dir_fd, listen_fd, start_fd, exec_err_fd, ready_fd;
        int log_out_fd, log_err_fd; /* -1: none (the caller's stdio went to the container) */
        /* A foreground run's client (shim-relay.h): its stdout and stderr, or for run -t the session stream.
         * Only fds above 2 count: 0 (a designated initializer's default) is never one. */
        int relay_out_fd, relay_err_fd, session_fd;
        uint64_t created_at;
        uint64_t log_max; /* 0: the shim's default */
} ShimLaunch;

/* execve() of berth-shim with these fds inherited (only those: the rest are O_CLOEXEC) and 0-2 on
 * /dev/null, from the sealed copy when there is one (exec.h): never from a file a container could reach.
 * Returns -errno when nothing could be executed. */
int shim_launch_exec(const Manager *m, const ShimLaunch *l);
