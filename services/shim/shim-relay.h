/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

/* berth-shim's relay to the client of a foreground run. The container writes into the shim's pipes (or
 * its pty), as a detached one does, so its output is logged; the relay copies the same bytes to the fds
 * the client passed: its stdout and stderr pipes for a plain run, the session stream (a socket, both
 * ways: output out, terminal input in) for `run -t`.
 *
 * The shim never blocks on the client: each target takes what it can without blocking and the rest
 * waits in a small buffer; while it waits, the shim stops reading that stream from the container (the
 * container is slowed down as if it wrote to the client directly). A client that went away (EPIPE, a
 * closed socket) is dropped and the container's output goes on into the log. libc only. */

#define SHIM_RELAY_STREAMS 2U
#define SHIM_RELAY_POLL_MAX (SHIM_RELAY_STREAMS + 1U)

/* Takes fd (-1: none) as the target of stream (0 stdout or the pty, 1 stderr). */
void shim_relay_open(unsigned stream, int fd);
/* Takes fd, a stream socket, as stream 0's target and as the input of the pty (terminal input). */
void shim_relay_open_session(int fd, int pty);

/* True while stream's target has bytes waiting: do not read more of the stream now. */
bool shim_relay_blocked(unsigned stream);
/* What was read from stream: to its target (or its buffer, which holds one read of the log pump). */
void shim_relay_output(unsigned stream, const void *buf, size_t n);

size_t shim_relay_poll_fill(struct pollfd *p);
void shim_relay_poll_dispatch(const struct pollfd *p, size_t n);

/* SHIM_OP_RESIZE: the window size of pty (the container's terminal). 0 or a positive errno. */
int shim_relay_resize(int pty, unsigned rows, unsigned cols);

/* Waits until stream's target took what is buffered; a target that takes nothing for a few seconds is
 * dropped (the shim is ending and must not wait on a reader for ever). */
void shim_relay_settle(unsigned stream);
/* Closes every target: the client sees the end of its streams. */
void shim_relay_finish(void);
