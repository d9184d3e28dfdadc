/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "container.h"

/* The supervisor's half of following a log (OpenLogStreams): a pipe whose write end goes to the shim
 * (SHIM_OP_LOG_FOLLOW, SCM_RIGHTS), which writes first "<inode> <size>\n" of its current log file at that
 * moment and then every record it logs, and closes it when it exits. The log files are opened after
 * that, so a reader takes log.1 whole, the file with that inode up to size, and the pipe from there:
 * nothing missed, nothing twice (see docs/api.md, "Logs"). */

/* *ret_pipe: the read end, or -EBADF when the container's shim is gone (read the files only). */
int log_follow_begin(Container *c, int *ret_pipe);
/* Opens log.1 (if any) and log, oldest first, read-only; returns how many (0..2). */
int log_open_files(Container *c, int fds[static 2]);
