/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* berth-shim: the parent of one container's init.
 *
 * The process that created the container (forked by the supervisor, in the host mount namespace, in
 * its own session) execs into this program, so the container's init is already our child. We reap it,
 * record how it ended in <state dir>/exit, copy its output into a log file for detached containers, and
 * answer the supervisor on <state dir>/shim.sock. We depend on nothing but libc and survive the
 * supervisor: it re-adopts us through the socket when it comes back.
 *
 * The fds we get are named on the command line (see usage()); everything else is closed at start. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup-oom.h"
#include "shim-exec.h"
#include "shim-log.h"
#include "shim-protocol.h"
#include "shim-relay.h"
#include "shim-spare.h"

#ifndef SYS_close_range
#define SYS_close_range 436 /* the same on every architecture; musl's headers may lack it */
#endif

#define LOG_STREAMS 2

typedef struct LogStream {
        int fd; /* read end of the container's stdout/stderr pipe (or a pty master), -1 once closed */
        const char *name;
        char buf[SHIM_LOG_LINE_MAX];
        size_t len;
} LogStream;

typedef struct Shim {
        const char *id;
        pid_t init_pid;
        int state_dir_fd;
        int start_fd;    /* write 1 byte: init execs; close: init exits */
        int exec_err_fd; /* EOF = exec succeeded, else the engine's failure record */
        int listen_fd;
        int signal_fd;
        int peers[SHIM_PEERS_MAX];
        int pending_start;           /* the peer waiting for the result of SHIM_OP_START, or -1 */
        char cgroup_procs[PATH_MAX]; /* the container cgroup's cgroup.procs, "" when unknown */
        uint64_t oom_kills_at_start;

        int log_fd;
        uint64_t log_size, log_max;
        LogStream streams[LOG_STREAMS];

        uint32_t status, reason;
        int exit_code;
        int exec_errno;
        int exec_status;
        uint64_t created_at, started_at, finished_at;
} Shim;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000U + (uint64_t) ts.tv_nsec / 1000U;
}

static int safe_close(int fd) {
        if (fd >= 0)
                (void) close(fd);
        return -1;
}

static int loop_write(int fd, const void *p, size_t n) {
        const char *c = p;

        while (n > 0) {
                ssize_t k = write(fd, c, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                c += k;
                n -= (size_t) k;
        }
        return 0;
}

/* Strict decimal parsing: digits only, no sign, no overflow. */
static int parse_u64(const char *s, uint64_t *ret) {
        uint64_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                if (v > (UINT64_MAX - (uint64_t) (*s - '0')) / 10U)
                        return -ERANGE;
                v = v * 10U + (uint64_t) (*s - '0');
        }
        *ret = v;
        return 0;
}

static int parse_fd(const char *s, int *ret) {
        uint64_t v;

        if (parse_u64(s, &v) < 0 || v > INT_MAX)
                return -EINVAL;
        *ret = (int) v;
        return 0;
}

/* OOM kills of the container's memory cgroup: the engine recorded where in <state dir>/oom-file. */
static uint64_t oom_kills(const Shim *s) {
        uint64_t n = 0;

        return cgroup_oom_kill_count_at(s->state_dir_fd, &n) >= 0 ? n : 0;
}

/* cgroup.procs next to the OOM record: the same cgroup (v2) or the memory hierarchy's (v1). */
static void find_cgroup_procs(Shim *s) {
        char buf[PATH_MAX];
        ssize_t n;
        char *slash;
        int fd = openat(s->state_dir_fd, CGROUP_OOM_FILE_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

        if (fd < 0)
                return;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return;
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        /* Its signals go to whatever pids the file lists: only a cgroup's, and never a truncated path. */
        slash = strrchr(buf, '/');
        if (!cgroup_oom_path_is_valid(buf) || !slash)
                return;
        if ((size_t) (slash - buf) + sizeof("/cgroup.procs") > sizeof(s->cgroup_procs))
                return;
        memcpy(s->cgroup_procs, buf, (size_t) (slash - buf));
        memcpy(s->cgroup_procs + (slash - buf), "/cgroup.procs", sizeof("/cgroup.procs"));
}

/* ---- log ---------------------------------------------------------------------------------------- */

static int log_open(Shim *s) {
        struct stat st;

        s->log_fd = openat(s->state_dir_fd, SHIM_LOG_FILE,
                           O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (s->log_fd < 0)
                return -errno;
        s->log_size = fstat(s->log_fd, &st) == 0 ? (uint64_t) st.st_size : 0;
        return 0;
}

static void log_rotate(Shim *s) {
        uint64_t old_size = s->log_size;

        /* One old file is kept: the log never takes more than twice the cap. */
        s->log_fd = safe_close(s->log_fd);
        (void) renameat(s->state_dir_fd, SHIM_LOG_FILE, s->state_dir_fd, SHIM_LOG_FILE ".1");
        (void) log_open(s);
        log_followers_rotated(s->log_fd, old_size, s->log_size); /* followers behind keep the old file */
}

static void log_line(Shim *s, LogStream *ls, const char *text, size_t len, bool partial) {
        char head[64];
        struct timespec ts;
        struct tm tm;
        size_t h;

        if (s->log_fd < 0)
                return;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        h = strftime(head, sizeof(head), "%Y-%m-%dT%H:%M:%S", &tm);
        h += (size_t) snprintf(head + h, sizeof(head) - h, ".%06ldZ %s %c ", ts.tv_nsec / 1000L, ls->name,
                               partial ? 'P' : 'F');
        struct iovec parts[3] = { { head, h }, { (void *) text, len }, { "\n", 1 } };
        for (size_t i = 0; i < 3; i++)
                if (loop_write(s->log_fd, parts[i].iov_base, parts[i].iov_len) < 0)
                        return;
        s->log_size += h + len + 1;
        log_followers_write(parts, 3);
        if (s->log_max > 0 && s->log_size >= s->log_max)
                log_rotate(s);
}

/* Reads what is there; writes every complete line, and a full buffer as a partial line. Returns false
 * at end of stream. */
static bool log_pump(Shim *s, LogStream *ls) {
        ssize_t n = read(ls->fd, ls->buf + ls->len, sizeof(ls->buf) - ls->len);

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return true;
        if (n <= 0) {
                /* EOF, or EIO from a pty master once the last slave fd closed. */
                if (ls->len > 0)
                        log_line(s, ls, ls->buf, ls->len, true);
                ls->len = 0;
                ls->fd = safe_close(ls->fd);
                return false;
        }
        if (ls == &s->streams[0]) /* clients attached to a -d -t container */
                shim_attach_output(ls->buf + ls->len, (size_t) n);
        /* A foreground run's client. */
        shim_relay_output((unsigned) (ls - s->streams), ls->buf + ls->len, (size_t) n);
        ls->len += (size_t) n;
        for (;;) {
                char *nl = memchr(ls->buf, '\n', ls->len);
                size_t line;

                if (!nl) {
                        if (ls->len == sizeof(ls->buf)) {
                                log_line(s, ls, ls->buf, ls->len, true);
                                ls->len = 0;
                        }
                        return true;
                }
                line = (size_t) (nl - ls->buf);
                /* A pty turns \n into \r\n: the \r is not part of the line. */
                log_line(s, ls, ls->buf, line > 0 && ls->buf[line - 1] == '\r' ? line - 1 : line, false);
                memmove(ls->buf, nl + 1, ls->len - line - 1);
                ls->len -= line + 1;
        }
}

/* ---- state and peers ---------------------------------------------------------------------------- */

static void fill_reply(const Shim *s, ShimReply *r, uint32_t type, int error, const char *message) {
        memset(r, 0, sizeof(*r));
        r->magic = SHIM_PROTOCOL_MAGIC;
        r->version = SHIM_PROTOCOL_VERSION;
        r->type = type;
        r->error = error;
        r->status = s->status;
        r->reason = s->reason;
        r->pid = s->status == SHIM_STATUS_STOPPED ? 0 : s->init_pid;
        r->exit_code = s->exit_code;
        r->created_at = s->created_at;
        r->started_at = s->started_at;
        r->finished_at = s->finished_at;
        if (message)
                snprintf(r->message, sizeof(r->message), "%s", message);
}

static void peer_drop(Shim *s, unsigned i) {
        if (s->pending_start == s->peers[i])
                s->pending_start = -1;
        s->peers[i] = safe_close(s->peers[i]);
}

static void send_reply(Shim *s, int fd, int error, const char *message) {
        ShimReply r;

        fill_reply(s, &r, SHIM_MSG_REPLY, error, message);
        (void) send(fd, &r, sizeof(r), MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void broadcast(Shim *s) {
        ShimReply r;

        fill_reply(s, &r, SHIM_MSG_EVENT, 0, NULL);
        for (unsigned i = 0; i < SHIM_PEERS_MAX; i++)
                if (s->peers[i] >= 0 && send(s->peers[i], &r, sizeof(r), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
                        peer_drop(s, i);
}

static void accept_peer(Shim *s) {
        struct ucred cred;
        socklen_t l = sizeof(cred);
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (fd < 0)
                return;
        /* SECURITY: only root (the supervisor) may drive us. The socket sits in a 0700 root directory
         * already; this holds even if someone got a connected fd some other way. */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &l) < 0 || cred.uid != 0) {
                close(fd);
                return;
        }
        for (unsigned i = 0; i < SHIM_PEERS_MAX; i++)
                if (s->peers[i] < 0) {
                        s->peers[i] = fd;
                        return;
                }
        close(fd);
}

static void kill_all(Shim *s, int sig) {
        char buf[4096];
        size_t len = 0;
        ssize_t n;
        int fd;

        if (s->cgroup_procs[0] && (fd = open(s->cgroup_procs, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
                while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
                        len += (size_t) n;
                close(fd);
                /* A full buffer may end mid-pid: signal only whole lines, never a pid's prefix. */
                while (len > 0 && buf[len - 1] != '\n')
                        len--;
                buf[len] = 0;
                for (char *tok = strtok(buf, "\n"); tok; tok = strtok(NULL, "\n")) {
                        uint64_t pid;
                        /* Never ourselves: under systemd the shim shares the container's scope. */
                        if (parse_u64(tok, &pid) == 0 && pid > 1 && pid <= INT_MAX &&
                            (pid_t) pid != getpid())
                                (void) kill((pid_t) pid, sig);
                }
        }
        (void) kill(s->init_pid, sig);
}

static void handle_request(Shim *s, unsigned i) {
        ShimRequest q;
        int rfds[SHIM_REQUEST_FDS_MAX];
        size_t n_rfds = 0;
        ssize_t n = shim_recv_request(s->peers[i], &q, rfds, &n_rfds);
        int fd = s->peers[i];

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n != (ssize_t) sizeof(q) || q.magic != SHIM_PROTOCOL_MAGIC ||
            q.version != SHIM_PROTOCOL_VERSION) {
                shim_close_fds(rfds, n_rfds);
                peer_drop(s, i);
                return;
        }
        if (q.op == SHIM_OP_LOG_FOLLOW) {
                /* Exactly one fd, the follow pipe; log_follower_add() takes it. */
                int e = n_rfds != 1 ? EINVAL : log_follower_add(rfds[0], s->log_fd, s->log_size);
                if (n_rfds == 1)
                        n_rfds = 0;
                send_reply(s, fd, e, e ? "cannot follow the log" : NULL);
                shim_close_fds(rfds, n_rfds);
                return;
        }
        switch (q.op) {
        case SHIM_OP_EXEC: /* shim-exec.c; it takes the fds */
                shim_exec_request(fd, &q, rfds, n_rfds, s->init_pid, s->status == SHIM_STATUS_RUNNING);
                n_rfds = 0;
                break;
        case SHIM_OP_ATTACH:
                shim_attach_request(fd, s->streams[0].fd, s->status == SHIM_STATUS_RUNNING);
                break;
        case SHIM_OP_STATE:
                send_reply(s, fd, 0, NULL);
                break;
        case SHIM_OP_RESIZE: { /* shim-relay.c */
                int e = shim_relay_resize(s->streams[0].fd, q.flags >> 16, q.flags & 0xffffU);
                send_reply(s, fd, e, e ? "cannot resize the container's terminal" : NULL);
                break;
        }
        case SHIM_OP_SIGNAL_EXEC: { /* shim-exec.c */
                int e = s->status == SHIM_STATUS_RUNNING ? shim_exec_signal((pid_t) q.flags, q.signal)
                                                         : ESRCH;
                send_reply(s, fd, e, e ? "no such exec'd process" : NULL);
                break;
        }
        case SHIM_OP_START:
                if (s->status != SHIM_STATUS_CREATED || s->pending_start >= 0) {
                        send_reply(s, fd, EBUSY, "the container is not in the created state");
                        break;
                }
                /* Sync point 1 (engine): one byte lets init exec the container's process. */
                if (loop_write(s->start_fd, "1", 1) < 0) {
                        send_reply(s, fd, EIO, "the container's init is gone");
                        break;
                }
                s->start_fd = safe_close(s->start_fd);
                s->started_at = now_usec();
                s->pending_start = fd; /* answered once exec_err_fd tells how exec went */
                break;
        case SHIM_OP_KILL:
                if (q.signal <= 0 || q.signal >= _NSIG || (q.flags & ~SHIM_KILL_ALL)) {
                        send_reply(s, fd, EINVAL, "invalid signal or flags");
                        break;
                }
                if (s->status == SHIM_STATUS_STOPPED) {
                        send_reply(s, fd, ESRCH, "the container is not running");
                        break;
                }
                if (q.flags & SHIM_KILL_ALL)
                        kill_all(s, q.signal);
                else
                        (void) kill(s->init_pid, q.signal);
                send_reply(s, fd, 0, NULL);
                break;
        default:
                send_reply(s, fd, EOPNOTSUPP, "unknown operation");
        }
        shim_close_fds(rfds, n_rfds);
}

/* Sync point 2 (engine): EOF on exec_err_fd means execve() succeeded (the fd is O_CLOEXEC in init);
 * otherwise init sends an EngineExecError (engine.h: int32 errno, int32 exit status 127/126, message)
 * and exits with that status. */
typedef struct ExecError {
        int32_t error;
        int32_t status;
        char message[512];
} ExecError;

static void handle_exec_result(Shim *s) {
        ExecError e = {};
        ssize_t n = read(s->exec_err_fd, &e, sizeof(e));

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        s->exec_err_fd = safe_close(s->exec_err_fd);
        if (n >= (ssize_t) (2 * sizeof(int32_t))) {
                e.message[sizeof(e.message) - 1] = 0;
                s->exec_errno = e.error > 0 ? e.error : EIO;
                s->exec_status = e.status == 126 || e.status == 127 ? e.status : 127;
                if (s->pending_start >= 0)
                        send_reply(s, s->pending_start, s->exec_errno,
                                   e.message[0] ? e.message : strerror(s->exec_errno));
        } else {
                if (s->status == SHIM_STATUS_CREATED)
                        s->status = SHIM_STATUS_RUNNING;
                if (s->pending_start >= 0)
                        send_reply(s, s->pending_start, 0, NULL);
                broadcast(s);
        }
        s->pending_start = -1;
}

static int write_exit_record(Shim *s) {
        char line[SHIM_EXIT_RECORD_MAX], tmp[64];
        int fd, r;

        snprintf(line, sizeof(line), "%d %s %" PRIu64 " %" PRIu64 "\n", s->exit_code,
                 shim_reason_to_string(s->reason), s->started_at, s->finished_at);
        snprintf(tmp, sizeof(tmp), ".#" SHIM_EXIT_FILE ".%d", (int) getpid());
        fd = openat(s->state_dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        /* Atomic (rename) but not flushed: the state directory is under /run, and after a crash of the
         * machine the container is gone anyway. A flush here delayed every exit notification. */
        r = loop_write(fd, line, strlen(line));
        close(fd);
        if (r == 0 && renameat(s->state_dir_fd, tmp, s->state_dir_fd, SHIM_EXIT_FILE) < 0)
                r = -errno;
        if (r < 0)
                (void) unlinkat(s->state_dir_fd, tmp, 0);
        return r;
}

static void handle_sigchld(Shim *s) {
        struct signalfd_siginfo si;
        int status;
        pid_t p;

        while (read(s->signal_fd, &si, sizeof(si)) == (ssize_t) sizeof(si))
                ;
        while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
                if (p != s->init_pid) {
                        (void) shim_exec_reaped(p, status); /* an exec'd process, or its joiner */
                        continue;
                }
                s->finished_at = now_usec();
                if (s->exec_err_fd >= 0)
                        handle_exec_result(s);
                if (s->exec_errno > 0) {
                        /* Like a shell: 127 not found, 126 found but not executable. */
                        s->reason = SHIM_REASON_EXEC_FAILED;
                        s->exit_code = s->exec_status;
                } else if (WIFSIGNALED(status)) {
                        s->exit_code = 128 + WTERMSIG(status);
                        s->reason = SHIM_REASON_SIGNAL;
                        if (WTERMSIG(status) == SIGKILL && oom_kills(s) > s->oom_kills_at_start)
                                s->reason = SHIM_REASON_OOM;
                } else {
                        s->exit_code = WEXITSTATUS(status);
                        s->reason = SHIM_REASON_EXITED;
                }
                s->status = SHIM_STATUS_STOPPED;
        }
}

static _Noreturn void usage(void) {
        fputs("Usage: berth-shim --id ID --init-pid PID --state-dir-fd FD --listen-fd FD --start-fd FD\n"
              "                  --exec-err-fd FD [--ready-fd FD] [--log-out-fd FD] [--log-err-fd FD]\n"
              "                  [--log-max BYTES] [--created-at USEC]\n"
              "                  [--relay-out-fd FD] [--relay-err-fd FD] [--session-fd FD]\n"
              "Started by berth-supervisor only.\n",
              stderr);
        exit(2);
}

static void parse_args(Shim *s, int argc, char *argv[], int *ready_fd, int relay_fds[static 3]) {
        static const struct option opts[] = { { "id", required_argument, NULL, 'i' },
                                              { "init-pid", required_argument, NULL, 'p' },
                                              { "state-dir-fd", required_argument, NULL, 'd' },
                                              { "listen-fd", required_argument, NULL, 'l' },
                                              { "start-fd", required_argument, NULL, 's' },
                                              { "exec-err-fd", required_argument, NULL, 'e' },
                                              { "ready-fd", required_argument, NULL, 'r' },
                                              { "log-out-fd", required_argument, NULL, 'o' },
                                              { "log-err-fd", required_argument, NULL, 'E' },
                                              { "log-max", required_argument, NULL, 'm' },
                                              { "created-at", required_argument, NULL, 'C' },
                                              { "relay-out-fd", required_argument, NULL, 'O' },
                                              { "relay-err-fd", required_argument, NULL, 'R' },
                                              { "session-fd", required_argument, NULL, 'S' },
                                              {} };
        int c, pid = -1;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                int ok = 0;
                switch (c) {
                case 'i':
                        s->id = optarg;
                        break;
                case 'p':
                        ok = parse_fd(optarg, &pid);
                        break;
                case 'd':
                        ok = parse_fd(optarg, &s->state_dir_fd);
                        break;
                case 'l':
                        ok = parse_fd(optarg, &s->listen_fd);
                        break;
                case 's':
                        ok = parse_fd(optarg, &s->start_fd);
                        break;
                case 'e':
                        ok = parse_fd(optarg, &s->exec_err_fd);
                        break;
                case 'r':
                        ok = parse_fd(optarg, ready_fd);
                        break;
                case 'o':
                        ok = parse_fd(optarg, &s->streams[0].fd);
                        break;
                case 'E':
                        ok = parse_fd(optarg, &s->streams[1].fd);
                        break;
                case 'm':
                        ok = parse_u64(optarg, &s->log_max);
                        break;
                case 'C':
                        ok = parse_u64(optarg, &s->created_at);
                        break;
                case 'O':
                        ok = parse_fd(optarg, &relay_fds[0]);
                        break;
                case 'R':
                        ok = parse_fd(optarg, &relay_fds[1]);
                        break;
                case 'S':
                        ok = parse_fd(optarg, &relay_fds[2]);
                        break;
                default:
                        usage();
                }
                if (ok < 0)
                        usage();
        }
        if (optind != argc || !s->id || pid <= 0 || s->state_dir_fd < 0 || s->listen_fd < 0 ||
            s->start_fd < 0 || s->exec_err_fd < 0)
                usage();
        s->init_pid = pid;
}

/* Closes every fd from 3 up that keep does not name, with close_range() over the gaps (one system call
 * each, whatever RLIMIT_NOFILE is) rather than close() on each possible number. */
static void close_others(const int *keep, size_t n) {
        unsigned from = 3;

        for (;;) {
                unsigned next = UINT_MAX;

                /* The smallest kept fd at or above from. */
                for (size_t i = 0; i < n; i++)
                        if (keep[i] >= 0 && (unsigned) keep[i] >= from && (unsigned) keep[i] < next)
                                next = (unsigned) keep[i];
                if (next > from && syscall(SYS_close_range, from, next - 1, 0) < 0)
                        for (unsigned fd = from; fd < next && fd < 65536; fd++)
                                (void) close((int) fd); /* kernels before 5.9 */
                if (next == UINT_MAX)
                        return;
                from = next + 1;
        }
}

int main(int argc, char *argv[]) {
        Shim s = {
                .state_dir_fd = -1,
                .start_fd = -1,
                .exec_err_fd = -1,
                .listen_fd = -1,
                .signal_fd = -1,
                .pending_start = -1,
                .log_fd = -1,
                .log_max = SHIM_LOG_SIZE_DEFAULT,
                .status = SHIM_STATUS_CREATED,
                .streams = { { .fd = -1, .name = "stdout" }, { .fd = -1, .name = "stderr" } },
        };
        struct pollfd pfd[4 + LOG_STREAMS + SHIM_PEERS_MAX + SHIM_EXEC_POLL_MAX + SHIM_LOG_FOLLOWERS_MAX +
                          SHIM_RELAY_POLL_MAX];
        int ready_fd = -1;
        int relay_fds[3] = { -1, -1, -1 }; /* a foreground client's: stdout, stderr, session */
        sigset_t mask;

        /* The creating process asked to die with the supervisor until it got here: from now on we must
         * outlive it. */
        (void) prctl(PR_SET_PDEATHSIG, 0);
        /* Exec'd from the supervisor's sealed memfd copy, the kernel names us after it: keep our name. */
        (void) prctl(PR_SET_NAME, "berth-shim");
        for (unsigned i = 0; i < SHIM_PEERS_MAX; i++)
                s.peers[i] = -1;
        parse_args(&s, argc, argv, &ready_fd, relay_fds);
        if (s.created_at == 0)
                s.created_at = now_usec();

        /* Only the fds we were given stay open (and 0-2, which are /dev/null); the last three are a
         * foreground client's, never made non-blocking here (shim-relay.c). */
        int keep[] = { 0,
                       1,
                       2,
                       s.state_dir_fd,
                       s.listen_fd,
                       s.start_fd,
                       s.exec_err_fd,
                       ready_fd,
                       s.streams[0].fd,
                       s.streams[1].fd,
                       relay_fds[0],
                       relay_fds[1],
                       relay_fds[2] };
        close_others(keep, sizeof(keep) / sizeof(keep[0]));
        for (size_t i = 3; i < sizeof(keep) / sizeof(keep[0]) - 3; i++)
                if (keep[i] >= 0) {
                        (void) fcntl(keep[i], F_SETFD, FD_CLOEXEC);
                        if (i != 5) /* start_fd is written once, blocking is fine */
                                (void) fcntl(keep[i], F_SETFL, fcntl(keep[i], F_GETFL) | O_NONBLOCK);
                }

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        /* Stray terminal or session signals must not take the container's parent away. */
        signal(SIGPIPE, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        s.signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (s.signal_fd < 0)
                return 1;
        if (s.streams[0].fd >= 0 || s.streams[1].fd >= 0)
                (void) log_open(&s);
        for (unsigned i = 0; i < 2; i++)
                if (relay_fds[i] >= 0) {
                        (void) fcntl(relay_fds[i], F_SETFD, FD_CLOEXEC);
                        shim_relay_open(i, relay_fds[i]);
                }
        if (relay_fds[2] >= 0) {
                (void) fcntl(relay_fds[2], F_SETFD, FD_CLOEXEC);
                shim_relay_open_session(relay_fds[2], s.streams[0].fd);
        }
        s.oom_kills_at_start = oom_kills(&s);
        find_cgroup_procs(&s);

        /* Ready: the supervisor may talk to us now. */
        if (ready_fd >= 0) {
                (void) loop_write(ready_fd, "R", 1);
                ready_fd = safe_close(ready_fd);
        }
        /* A child that ended before the signal was blocked is still waiting to be reaped. */
        handle_sigchld(&s);

        while (s.status != SHIM_STATUS_STOPPED) {
                nfds_t n = 0;
                int ix_listen, ix_sig, ix_exec = -1, ix_log[LOG_STREAMS], ix_peer[SHIM_PEERS_MAX];

                pfd[ix_listen = (int) n++] = (struct pollfd){ .fd = s.listen_fd, .events = POLLIN };
                pfd[ix_sig = (int) n++] = (struct pollfd){ .fd = s.signal_fd, .events = POLLIN };
                if (s.exec_err_fd >= 0 && s.start_fd < 0)
                        pfd[ix_exec = (int) n++] = (struct pollfd){ .fd = s.exec_err_fd, .events = POLLIN };
                for (unsigned i = 0; i < LOG_STREAMS; i++) {
                        ix_log[i] = -1;
                        if (s.streams[i].fd >= 0 && !shim_relay_blocked(i))
                                pfd[ix_log[i] = (int) n++] =
                                        (struct pollfd){ .fd = s.streams[i].fd, .events = POLLIN };
                }
                for (unsigned i = 0; i < SHIM_PEERS_MAX; i++) {
                        ix_peer[i] = -1;
                        if (s.peers[i] >= 0)
                                pfd[ix_peer[i] = (int) n++] =
                                        (struct pollfd){ .fd = s.peers[i], .events = POLLIN };
                }
                nfds_t ix_follow = n;
                n += log_followers_poll_fill(pfd + n);
                nfds_t ix_exec_fds = n;
                n += shim_exec_poll_fill(pfd + n);
                nfds_t ix_relay = n;
                n += shim_relay_poll_fill(pfd + n);
                if (poll(pfd, n, shim_spare_timeout_ms()) < 0) {
                        if (errno == EINTR)
                                continue;
                        return 1;
                }
                for (unsigned i = 0; i < LOG_STREAMS; i++)
                        if (ix_log[i] >= 0 && pfd[ix_log[i]].revents)
                                (void) log_pump(&s, &s.streams[i]);
                log_followers_poll_dispatch(pfd + ix_follow, ix_exec_fds - ix_follow);
                if (ix_exec >= 0 && pfd[ix_exec].revents)
                        handle_exec_result(&s);
                if (pfd[ix_sig].revents)
                        handle_sigchld(&s);
                shim_exec_poll_dispatch(pfd + ix_exec_fds, ix_relay - ix_exec_fds);
                shim_relay_poll_dispatch(pfd + ix_relay, n - ix_relay);
                shim_spare_expire();
                if (pfd[ix_listen].revents)
                        accept_peer(&s);
                for (unsigned i = 0; i < SHIM_PEERS_MAX; i++)
                        if (ix_peer[i] >= 0 && s.peers[i] >= 0 && pfd[ix_peer[i]].revents) {
                                if (pfd[ix_peer[i]].revents & POLLIN)
                                        handle_request(&s, i);
                                else
                                        peer_drop(&s, i);
                        }
        }

        /* init is gone, and with it its pid namespace: every writer of the log pipes is dying. Drain
         * them (bounded: a pipe whose writer leaked outside the container would otherwise hold us). */
        for (unsigned i = 0; i < LOG_STREAMS; i++) {
                (void) fcntl(s.streams[i].fd, F_SETFL, fcntl(s.streams[i].fd, F_GETFL) & ~O_NONBLOCK);
                while (s.streams[i].fd >= 0) {
                        struct pollfd p = { .fd = s.streams[i].fd, .events = POLLIN };
                        shim_relay_settle(i);
                        if (poll(&p, 1, 2000) <= 0 || !log_pump(&s, &s.streams[i]))
                                break;
                }
        }
        s.log_fd = safe_close(s.log_fd);
        /* Before the exit record: whoever hears of the exit has seen the end of the output. */
        shim_relay_finish();
        shim_exec_finish();
        /* The record first, then the event: whoever hears of the exit can read it. */
        (void) write_exit_record(&s);
        broadcast(&s);
        /* Unlink the socket so nobody mistakes a stale file for a live shim. */
        (void) unlinkat(s.state_dir_fd, SHIM_SOCKET_FILE, 0);
        log_followers_finish();
        return 0;
}
