/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* SHIM_OP_EXEC: a process started inside a running container (`berthctl exec`, health checks).
 *
 * Who does what (docs/architecture.md, "exec"): the supervisor computes the process's confinement from
 * the container's own config.json (the same capability sets, seccomp programs compiled by the same
 * loader, no_new_privs, rlimits, umask, oom_score_adj) plus the exec's user (resolved in the container's
 * /etc/passwd and /etc/group), env, cwd and argv, and writes it as a plan into a sealed memfd. The shim
 * forks a joiner that enters the init's cgroup and namespaces (mount namespace last) and clone()s the
 * process with CLONE_PARENT, so the process is the shim's child in the container's pid namespace: the
 * shim reaps it and writes its exit status to the status fd. The shim runs from a sealed memfd
 * (CVE-2019-5736) and the joiner is not dumpable until its execve (CVE-2016-9962).
 *
 * Request: ShimRequest{op = SHIM_OP_EXEC, flags = SHIM_EXEC_FD_*}; SCM_RIGHTS: the plan memfd, then, in
 * this order, the fds whose flag is set. A missing stdio fd is the container's /dev/null.
 * Reply: ShimReply{type = REPLY, error, pid = the process's host pid}, once its execve() succeeded or
 * failed; with SHIM_EXEC_PLAN_TTY the pty master (of the container's devpts) by SCM_RIGHTS.
 * Status fd: one line "<exit code> <reason>\n" (shim_reason_to_string) once the process was reaped. */

#define SHIM_EXEC_FD_STDIN (UINT32_C(1) << 0)
#define SHIM_EXEC_FD_STDOUT (UINT32_C(1) << 1)
#define SHIM_EXEC_FD_STDERR (UINT32_C(1) << 2)
#define SHIM_EXEC_FD_STATUS (UINT32_C(1) << 3)
#define SHIM_EXEC_FDS_KNOWN                                                                                 \
        (SHIM_EXEC_FD_STDIN | SHIM_EXEC_FD_STDOUT | SHIM_EXEC_FD_STDERR | SHIM_EXEC_FD_STATUS)

#define SHIM_EXEC_PLAN_MAGIC 0x42455850U /* "BEXP" */
#define SHIM_EXEC_PLAN_VERSION 2U
#define SHIM_EXEC_PLAN_SIZE_MAX (2U * 1024U * 1024U)
#define SHIM_EXEC_ARGS_MAX 4096U
#define SHIM_EXEC_ENV_MAX 4096U
#define SHIM_EXEC_GROUPS_MAX 256U
#define SHIM_EXEC_RLIMITS_MAX 16U
#define SHIM_EXEC_FILTERS_MAX 2U
#define SHIM_EXEC_FILTER_LEN_MAX 4096U /* BPF_MAXINSNS */
#define SHIM_EXECS_MAX 32U             /* live exec processes per container */
#define SHIM_ATTACH_MAX 4U             /* attached clients per container */
#define SHIM_EXEC_STATUS_MAX 64U

#define SHIM_EXEC_PLAN_TTY (UINT32_C(1) << 0)
#define SHIM_EXEC_PLAN_NO_NEW_PRIVS (UINT32_C(1) << 1)
#define SHIM_EXEC_PLAN_OOM_SCORE_ADJ (UINT32_C(1) << 2)

typedef struct ShimExecRlimit {
        int32_t resource;
        uint32_t reserved;
        uint64_t soft, hard; /* UINT64_MAX = unlimited */
} ShimExecRlimit;

/* The plan: this header, then gid_t groups[n_groups] (as uint32_t), ShimExecRlimit rlimits[n_rlimits],
 * the filters' BPF programs one after the other (struct sock_filter, 8 bytes an instruction), then the
 * strings: cwd, args, env, each NUL-terminated, strings_size bytes in all. Every count and size is checked
 * by the reader. */
typedef struct ShimExecPlan {
        uint32_t magic;
        uint32_t version;
        uint32_t size; /* of the whole plan */
        uint32_t flags;
        uint32_t uid, gid;
        uint32_t umask;
        int32_t oom_score_adj;
        uint16_t tty_rows, tty_columns; /* with SHIM_EXEC_PLAN_TTY: the pty's size before execve (0: none) */
        uint32_t reserved;
        uint64_t cap_bounding, cap_effective, cap_permitted, cap_inheritable, cap_ambient;
        uint32_t n_groups, n_rlimits, n_filters, n_args, n_env;
        uint32_t filter_len[SHIM_EXEC_FILTERS_MAX];
        uint32_t strings_size;
} ShimExecPlan;

/* The joiner's report to the shim (SOCK_SEQPACKET): its pid first, then the pty master (SCM_RIGHTS) with
 * a tty, or a failure; end of stream once execve() succeeded. */
typedef enum ShimExecReportType {
        SHIM_EXEC_REPORT_PID = 1,
        SHIM_EXEC_REPORT_PTY = 2,
        SHIM_EXEC_REPORT_ERROR = 3,
} ShimExecReportType;

typedef struct ShimExecReport {
        int32_t type;
        int32_t pid;
        int32_t error;  /* errno */
        int32_t status; /* 126 or 127 */
        char message[200];
} ShimExecReport;
