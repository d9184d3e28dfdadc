/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* berth-shim's log followers (SHIM_OP_LOG_FOLLOW, lib/shim-protocol.h): pipes that get a copy of every
 * record the shim writes to the log file, in order, each once; a follower whose reader is slow falls
 * behind and catches up from the files (shim-log.c). libc only, like the rest of the shim. */

/* Takes fd (a pipe's write end): writes "<inode> <size>\n" of the log file log_fd now, then follows.
 * Returns 0, or a positive errno (fd closed). */
int log_follower_add(int fd, int log_fd, uint64_t log_size);
/* One record (its parts), just appended to the log file: to every live follower; one whose pipe cannot
 * take it whole falls behind. */
void log_followers_write(const struct iovec *parts, int n);
/* The log was rotated: log_fd is the new file (new_size bytes), the old one (old_size) is now log.1. */
void log_followers_rotated(int log_fd, uint64_t old_size, uint64_t new_size);
/* The loop's part: the pipes of followers behind, polled for POLLOUT, and catching up when they may. */
size_t log_followers_poll_fill(struct pollfd *p);
void log_followers_poll_dispatch(const struct pollfd *p, size_t n);
/* At the shim's exit, the log closed: followers that have everything get EOF; those behind are served to
 * the end by a child of their own, so that the shim exits now. */
void log_followers_finish(void);
