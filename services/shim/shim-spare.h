/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* berth-shim's spare joiner (shim-spare.c): one joiner forked ahead of the next exec, already in the
 * init's cgroup and namespaces, so that the exec does not wait for the cgroup attach. */

/* Killed after this long without an exec. */
#define SHIM_SPARE_IDLE_SEC 60U

/* Forks the spare if there is none. Only while the init runs (not reaped: its pid names it). */
void shim_spare_ensure(pid_t init_pid);
/* Hands one exec to the spare: flags (SHIM_EXEC_FD_STDIN/STDOUT/STDERR) say which of stdio are set. The
 * fds stay the caller's. false when there is no spare or it is gone: fork a joiner instead. */
bool shim_spare_take(uint32_t flags, int report, int plan_fd, const int stdio[3]);
/* A reaped child: true when it was the spare. */
bool shim_spare_reaped(pid_t pid);
/* The poll timeout until the spare's idle end (-1: none), and what to do once it passed. */
int shim_spare_timeout_ms(void);
void shim_spare_expire(void);
/* The container ended: the spare is killed and reaped (it must not hold the container's cgroup). */
void shim_spare_stop(void);
