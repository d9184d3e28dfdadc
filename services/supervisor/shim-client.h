/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "shim-protocol.h"

/* The supervisor's side of lib/shim-protocol.h. */

#define SHIM_CALL_TIMEOUT_SEC 10

/* Connects to <state_dir_fd>/shim.sock (non-blocking connect through /proc/self/fd, so no path
 * outside the state directory is resolved). Returns a connected fd or -errno (-ECONNREFUSED: no shim). */
int shim_connect(int state_dir_fd);

/* One request on its own connection, answered by one reply (bounded wait). */
int shim_call(int state_dir_fd, uint32_t op, int signal, uint32_t flags, ShimReply *ret);
/* The same with fd passed along (SCM_RIGHTS), e.g. SHIM_OP_LOG_FOLLOW's pipe. */
int shim_call_with_fd(int state_dir_fd, uint32_t op, int fd, ShimReply *ret);

/* Reads one message from a connection; -EPIPE at end of stream, -EAGAIN if none yet, -EBADMSG. */
int shim_receive(int fd, ShimReply *ret);
