/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "shim-exec-protocol.h"
#include "shim-protocol.h"

/* berth-shim's exec and attach (lib/shim-exec-protocol.h has the protocol). Kept apart from shim.c, which
 * calls these hooks from its loop. */

#define SHIM_REQUEST_FDS_MAX 5U
#define SHIM_EXEC_POLL_MAX (SHIM_EXECS_MAX + SHIM_ATTACH_MAX)

/* recv() of one request, with the fds it carries (O_CLOEXEC). Returns what recvmsg() returned. */
ssize_t shim_recv_request(int fd, ShimRequest *q, int fds[static SHIM_REQUEST_FDS_MAX], size_t *ret_n);
void shim_close_fds(int *fds, size_t n);

/* SHIM_OP_EXEC from the connection peer_fd, with its fds (taken). Answers on peer_fd itself, at once on
 * a refusal, otherwise once the process's execve() succeeded or failed. */
void shim_exec_request(int peer_fd, const ShimRequest *q, int *fds, size_t n_fds, pid_t init_pid,
                       bool running);
/* SHIM_OP_ATTACH: pty is the master the shim reads (the log's stdout stream), or -1. */
void shim_attach_request(int peer_fd, int pty, bool running);

/* SHIM_OP_SIGNAL_EXEC: sig to pid if it is a live exec'd process of ours. 0 or a positive errno. */
int shim_exec_signal(pid_t pid, int sig);

/* A reaped child: true when it was an exec'd process (its status is written to its status fd). */
bool shim_exec_reaped(pid_t pid, int status);

/* The loop's part: fds to poll, and what to do with their events. */
size_t shim_exec_poll_fill(struct pollfd *p);
void shim_exec_poll_dispatch(const struct pollfd *p, size_t n);

/* Output of the pty, copied to every attached client (dropped for one that does not keep up). */
void shim_attach_output(const void *buf, size_t n);

/* The joiner's steps, for a joiner forked at once (shim-exec.c) or ahead (shim-spare.c), in this order:
 * not dumpable, dies with the shim, every fd but keep closed; the init's namespace fds opened, its
 * cgroup joined in every hierarchy, its namespaces entered, the mount namespace last (0, or -errno with
 * why set); then the plan mapped and P cloned, reported on report (never returns). */
void shim_joiner_prepare(const int *keep, size_t n);
int shim_joiner_enter(pid_t init_pid, char *why, size_t why_size);
_Noreturn void shim_joiner_finish(int report, int plan_fd, const int stdio[3]);
_Noreturn void shim_joiner_fail(int report, int error, const char *why);

/* The init is gone (and with its pid namespace every exec'd process): reap them, report, close. */
void shim_exec_finish(void);
