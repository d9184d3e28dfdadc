/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* The supervisor ↔ berth-shim protocol, on /run/berth/containers/<id>/shim.sock (SOCK_SEQPACKET,
 * filesystem socket in a 0700 root directory; the shim accepts only peers with SO_PEERCRED uid 0).
 *
 * One fixed-size request per datagram, answered by one fixed-size reply. A connection stays open:
 * the shim also sends unsolicited SHIM_MSG_EVENT replies (state changes) to every connected peer,
 * which is how the supervisor learns of an exit without polling. Both sides check magic, version and
 * sizes; anything else closes the connection. No strings cross except the bounded error text. */

#define SHIM_PROTOCOL_MAGIC 0x42534831U /* "BSH1" */
#define SHIM_PROTOCOL_VERSION 1U
#define SHIM_MESSAGE_MAX 256U
#define SHIM_PEERS_MAX 16U

typedef enum ShimOp {
        SHIM_OP_STATE = 1, /* reply: the current state */
        SHIM_OP_START = 2, /* let init exec the process; reply once exec succeeded or failed */
        SHIM_OP_KILL = 3,  /* signal, flags SHIM_KILL_ALL: every process of the container */
        SHIM_OP_EXEC = 4,  /* run a process in the container: see shim-exec-protocol.h (fds by SCM_RIGHTS) */
        SHIM_OP_ATTACH = 5, /* a stream socket to a detached tty container's pty (fd in the reply) */
        SHIM_OP_RESIZE = 6, /* the container pty's window size: flags = rows << 16 | columns */
        /* signal to an exec'd process: flags = its host pid, which must be a process the shim started and
         * has not reaped yet (so the pid cannot be another's) */
        SHIM_OP_SIGNAL_EXEC = 7,
        /* The write end of a pipe comes with the request (SCM_RIGHTS): the shim writes "<inode> <size>\n"
         * of its current log file, then a copy of every record it logs, and closes it when it exits.
         * A follower whose pipe is full falls behind and is caught up from the files, never waited for
         * (services/shim/shim-log.c). */
        SHIM_OP_LOG_FOLLOW = 16,
} ShimOp;

#define SHIM_LOG_FOLLOWERS_MAX 16U

#define SHIM_KILL_ALL (UINT32_C(1) << 0)

typedef enum ShimStatus {
        SHIM_STATUS_CREATED = 1,
        SHIM_STATUS_RUNNING = 2,
        SHIM_STATUS_STOPPED = 3,
} ShimStatus;

typedef enum ShimReason {
        SHIM_REASON_NONE = 0,
        SHIM_REASON_EXITED = 1,
        SHIM_REASON_SIGNAL = 2,
        SHIM_REASON_OOM = 3,
        SHIM_REASON_EXEC_FAILED = 4,
} ShimReason;

typedef struct ShimRequest {
        uint32_t magic;
        uint32_t version;
        uint32_t op;    /* ShimOp */
        int32_t signal; /* SHIM_OP_KILL */
        uint32_t flags; /* SHIM_OP_KILL: SHIM_KILL_ALL */
        uint32_t reserved;
} ShimRequest;

typedef enum ShimMessageType {
        SHIM_MSG_REPLY = 1, /* answers the request just received */
        SHIM_MSG_EVENT = 2, /* unsolicited: the state changed */
} ShimMessageType;

typedef struct ShimReply {
        uint32_t magic;
        uint32_t version;
        uint32_t type;       /* ShimMessageType */
        int32_t error;       /* 0 or a positive errno; message says why */
        uint32_t status;     /* ShimStatus */
        uint32_t reason;     /* ShimReason, once stopped */
        int32_t pid;         /* host pid of the container's init (0 once reaped) */
        int32_t exit_code;   /* 0..255: N, 128+signal, 126/127 exec failure, 137 oom */
        uint64_t created_at; /* CLOCK_REALTIME µs */
        uint64_t started_at;
        uint64_t finished_at;
        char message[SHIM_MESSAGE_MAX]; /* NUL-terminated */
} ShimReply;

/* The exit record the shim writes atomically to <state dir>/exit before it exits, one line:
 *   "<exit_code> <reason> <started_at µs> <finished_at µs>\n"
 * reason is one of the strings below. Parsed by the supervisor with strict number parsing. */
#define SHIM_EXIT_FILE "exit"
#define SHIM_SOCKET_FILE "shim.sock"
#define SHIM_LOG_FILE "log"
#define SHIM_EXIT_RECORD_MAX 128U

/* Detached logs: each line is "<RFC 3339 UTC time with µs> <stdout|stderr> <F|P> <text>\n" (the CRI
 * format: P = partial line, cut at SHIM_LOG_LINE_MAX). The log is rotated once it exceeds the size
 * given to the shim: log → log.1 (one old file kept). */
#define SHIM_LOG_LINE_MAX 16384U
#define SHIM_LOG_SIZE_DEFAULT (16U * 1024U * 1024U)

static inline const char *shim_reason_to_string(uint32_t r) {
        switch (r) {
        case SHIM_REASON_EXITED:
                return "exited";
        case SHIM_REASON_SIGNAL:
                return "signal";
        case SHIM_REASON_OOM:
                return "oom";
        case SHIM_REASON_EXEC_FAILED:
                return "exec-failed";
        default:
                return "";
        }
}

static inline const char *shim_status_to_string(uint32_t s) {
        switch (s) {
        case SHIM_STATUS_CREATED:
                return "created";
        case SHIM_STATUS_RUNNING:
                return "running";
        default:
                return "stopped";
        }
}
