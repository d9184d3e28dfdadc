/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* berth-shim's log followers (SHIM_OP_LOG_FOLLOW, lib/shim-protocol.h): pipes that get a copy of every
 * record the shim writes to the log file. libc only, like the rest of the shim. */

/* Takes fd (a pipe's write end): writes "<inode> <size>\n" of the log file log_fd now, then follows.
 * Returns 0, or a positive errno (fd closed). */
int log_follower_add(int fd, int log_fd, uint64_t log_size);
/* Writes one record (its parts) to every follower; a follower that cannot take it whole is dropped. */
void log_followers_write(const struct iovec *parts, int n);
