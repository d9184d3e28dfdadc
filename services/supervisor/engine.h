/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "berth-error.h"

/* The engine: executes an OCI runtime spec (the subset spec.c reads). Shapes fixed by
 * /work/coord/run-contract.md. */

typedef struct EngineIO {
        int stdio[3];  /* fds for the container's 0,1,2; -1 = /dev/null. Ignored for those a pty replaces. */
        bool terminal; /* allocate a pty inside the container's devpts; master returned in pty_master */
} EngineIO;

typedef struct EngineContainer {
        pid_t init_pid;  /* host pid of the container's init: a child of the caller */
        int start_fd;    /* write 1 byte: init execs the process (create → start); close: init exits */
        int exec_err_fd; /* read: EOF = exec succeeded; else an EngineExecError record */
        int pty_master;  /* with terminal, else -1 */
} EngineContainer;

/* What the init writes on exec_err_fd when its final execve() fails, then it exits with .status:
 * 127 for a missing executable (ENOENT, ENOTDIR, ELOOP), 126 for one that cannot be run (EACCES,
 * ENOEXEC, …), as a shell does. Fixed size, written with one write(). */
typedef struct EngineExecError {
        int32_t error;  /* errno */
        int32_t status; /* 127 or 126 */
        char message[512];
} EngineExecError;

/* Executes an OCI runtime spec (config.json already written to state_dir_fd/config.json, parsed in
 * spec). root.path is an absolute host path already mounted by the caller.
 * cgroup: linux.cgroupsPath is created/joined by the engine through the cgroup ops struct (v1, v2,
 * hybrid, systemd scope); the path of its OOM record is written to state_dir_fd/oom-file (see
 * cgroup-oom.h). On error returns -errno with a message in err and leaves nothing behind (no child,
 * no cgroup).
 * The calling process must run from a sealed copy of its binary (exe-seal.h), or this refuses; it
 * should be single-threaded (a forked child such as the future shim): the init is cloned like fork()
 * and runs engine code until its execve. Bind sources given as /proc/self/fd/N must stay open until
 * this returns. All fds returned are O_CLOEXEC. On return the init waits at START, holding only its
 * stdio and the other ends of start_fd and exec_err_fd. */
int engine_create(int state_dir_fd, JsonNode *spec, const EngineIO *io, EngineContainer *ret,
                  BerthError *err);

/* Removes the cgroup engine_create() made for spec (after the container's processes are gone). 0 when
 * there was none. */
int engine_cgroup_remove(JsonNode *spec, BerthError *err);

/* OOM kills seen in the container's memory cgroup (from state_dir_fd/oom-file). -ENOENT without one. */
int engine_oom_kill_count(int state_dir_fd, uint64_t *ret);
