/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Log followers (SHIM_OP_LOG_FOLLOW): pipes that get every record the shim logs, without the shim ever
 * waiting for their readers and without one record lost or sent twice.
 *
 * A follower is live while its pipe takes each record whole as it is logged. When a write would block
 * (a paused `logs -f | less`, a slow terminal), the follower falls behind: it remembers its position in
 * the log and gets no live records; once its pipe is writable again (POLLOUT) the shim copies the log
 * from that position out of the files, a chunk at a time, and the follower is live again when it has
 * caught up. Positions count the bytes of every file the shim wrote since it started, so that they stay
 * valid across a rotation: the read-only fds of the current file and of log.1 are kept open while a
 * follower behind still needs them. What a rotation removed entirely before a follower read it (log.1
 * was rotated over) is never skipped silently: the follower gets a stderr record saying how many bytes
 * are missing, and continues with the oldest file there is. The shim's memory does not grow with
 * followers or with their lag: one static chunk buffer, and at most two more fds.
 *
 * When the container stops, followers that have everything get EOF; if some are still behind, a child
 * (berth-shim-log) serves them to the end, so that the shim can exit at once (the supervisor waits for
 * it) and no reader loses the end of the log. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim-log.h"
#include "shim-protocol.h"

#ifndef SYS_close_range
#define SYS_close_range 436 /* the same on every architecture; musl's headers may lack it */
#endif

/* A follower behind gets at most this much per turn of the loop: the container's output and the
 * supervisor's requests are served in between. */
#define CATCH_UP_TURN_MAX (256U * 1024U)

typedef struct Follower {
        int fd;       /* the pipe's write end (non-blocking); -1: a free slot */
        bool behind;  /* gets no live records; copied from the files from pos */
        bool at_bol;  /* what it got so far ends with a whole record */
        uint64_t pos; /* behind: the log position of the next byte it gets */
} Follower;

static struct {
        Follower f[SHIM_LOG_FOLLOWERS_MAX];
        unsigned n_behind;
        unsigned polled[SHIM_LOG_FOLLOWERS_MAX]; /* poll slot → follower */
        int log_fd;                              /* the shim's write-only fd of the current file */
        ino_t cur_ino;
        int cur_rd, prev_rd; /* read-only: the current file and log.1, while a follower behind needs them */
        uint64_t cur_base, prev_base; /* the log positions at which they begin */
        uint64_t end;                 /* the position after the last record logged */
        bool draining;                /* the container stopped: no more records */
} L = {
        .f = { [0 ... SHIM_LOG_FOLLOWERS_MAX - 1] = { .fd = -1 } },
        .log_fd = -1,
        .cur_rd = -1,
        .prev_rd = -1,
};

static char chunk[8192];

static int safe_close(int fd) {
        if (fd >= 0)
                (void) close(fd);
        return -1;
}

/* A second, read-only open file of the one the shim appends to (its own fd is write-only). */
static int reopen_read_only(int fd) {
        char path[64];

        if (fd < 0)
                return -1;
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        return open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
}

/* Closes the files no follower behind needs any more. */
static void release_files(void) {
        bool need_prev = false;

        for (unsigned i = 0; i < SHIM_LOG_FOLLOWERS_MAX; i++)
                if (L.f[i].fd >= 0 && L.f[i].behind && L.f[i].pos < L.cur_base)
                        need_prev = true;
        if (!need_prev)
                L.prev_rd = safe_close(L.prev_rd);
        if (L.n_behind == 0)
                L.cur_rd = safe_close(L.cur_rd);
}

static void follower_drop(Follower *f) {
        if (f->behind)
                L.n_behind--;
        f->fd = safe_close(f->fd);
        f->behind = false;
        release_files();
}

static void follower_fall_behind(Follower *f, uint64_t pos) {
        if (L.cur_rd < 0)
                /* Should this fail, catching up says what it could not read. */
                L.cur_rd = reopen_read_only(L.log_fd);
        f->behind = true;
        f->pos = pos;
        L.n_behind++;
}

/* Tells the follower that `bytes` of the log are gone (why), as a stderr record of its own on a line
 * of its own, and moves it past them. Returns 1 when written, 0 when the pipe is full, -errno. */
static int follower_skip(Follower *f, uint64_t bytes, const char *why) {
        char line[256], stamp[32];
        struct timespec ts;
        struct tm tm;
        int n;

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        /* A record it got a part of ends here, with the rest of it counted as skipped. */
        n = snprintf(line, sizeof(line),
                     "%s%s.%06ldZ stderr F [berth] %" PRIu64 " bytes of log skipped: %s before this reader "
                     "read them\n",
                     f->at_bol ? "" : "\n", stamp, ts.tv_nsec / 1000L, bytes, why);
        /* Shorter than PIPE_BUF: the pipe takes it whole or not at all. */
        if (write(f->fd, line, (size_t) n) != n)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        f->pos += bytes;
        f->at_bol = true;
        return 1;
}

/* Copies the log to a follower behind from its position. Returns 1 when it caught up, 0 when its pipe
 * is full or its turn is over, -errno when it is to be dropped. */
static int follower_catch_up(Follower *f) {
        size_t turn = CATCH_UP_TURN_MAX;

        while (turn > 0) {
                uint64_t off, avail;
                size_t want;
                ssize_t n, w;
                int fd, r;

                if (f->pos >= L.end)
                        return 1;
                if (f->pos >= L.cur_base) {
                        fd = L.cur_rd;
                        off = f->pos - L.cur_base;
                        avail = L.end - f->pos;
                } else if (L.prev_rd >= 0 && f->pos >= L.prev_base) {
                        fd = L.prev_rd;
                        off = f->pos - L.prev_base;
                        avail = L.cur_base - f->pos;
                } else {
                        /* Rotated over while it was behind: what is left begins with the oldest file. */
                        r = follower_skip(f, (L.prev_rd >= 0 ? L.prev_base : L.cur_base) - f->pos,
                                          "rotated away (log max size)");
                        if (r <= 0)
                                return r;
                        continue;
                }
                want = avail < sizeof(chunk) ? (size_t) avail : sizeof(chunk);
                if (want > turn)
                        want = turn;
                n = fd >= 0 ? pread(fd, chunk, want, (off_t) off) : -1;
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        /* The file cannot be read, or ends early (a write the disk refused): say so. */
                        r = follower_skip(f, avail, "unreadable");
                        if (r <= 0)
                                return r;
                        continue;
                }
                w = write(f->fd, chunk, (size_t) n);
                if (w < 0)
                        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
                f->pos += (uint64_t) w;
                f->at_bol = chunk[w - 1] == '\n';
                turn -= (size_t) w;
                if (w < n)
                        return 0;
        }
        return 0;
}

int log_follower_add(int fd, int log_fd, uint64_t log_size) {
        struct stat st, lst;
        char head[64];
        int n;

        /* Only a pipe: the shim writes nothing anywhere else on anyone's behalf. */
        if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode) || (fcntl(fd, F_GETFL) & O_ACCMODE) != O_WRONLY) {
                close(fd);
                return EINVAL;
        }
        if (log_fd < 0 || fstat(log_fd, &lst) < 0) {
                close(fd);
                return ENOENT;
        }
        for (unsigned i = 0; i < SHIM_LOG_FOLLOWERS_MAX; i++) {
                if (L.f[i].fd >= 0)
                        continue;
                (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
                n = snprintf(head, sizeof(head), "%" PRIu64 " %" PRIu64 "\n", (uint64_t) lst.st_ino,
                             log_size);
                if (write(fd, head, (size_t) n) != n) {
                        close(fd);
                        return EIO;
                }
                L.log_fd = log_fd;
                L.cur_ino = lst.st_ino;
                L.end = L.cur_base + log_size;
                L.f[i] = (Follower){ .fd = fd, .at_bol = true };
                return 0;
        }
        close(fd);
        return EBUSY;
}

void log_followers_write(const struct iovec *parts, int n) {
        uint64_t start = L.end;
        size_t total = 0;

        for (int i = 0; i < n; i++)
                total += parts[i].iov_len;
        L.end += total;
        for (unsigned i = 0; i < SHIM_LOG_FOLLOWERS_MAX; i++) {
                Follower *f = &L.f[i];

                if (f->fd < 0 || f->behind)
                        continue;
                ssize_t k = writev(f->fd, parts, n);
                if (k < 0 && errno == EINTR)
                        k = writev(f->fd, parts, n);
                if (k == (ssize_t) total) {
                        f->at_bol = true;
                        continue;
                }
                if (k < 0 && errno != EAGAIN) {
                        follower_drop(f); /* its reader is gone */
                        continue;
                }
                /* Full: the rest of this record and what follows come from the file, once it can take
                 * them. */
                if (k > 0)
                        f->at_bol = false;
                follower_fall_behind(f, start + (k > 0 ? (uint64_t) k : 0));
        }
}

void log_followers_rotated(int log_fd, uint64_t old_size, uint64_t new_size) {
        struct stat st;
        bool have = log_fd >= 0 && fstat(log_fd, &st) == 0;

        L.log_fd = log_fd;
        if (have && st.st_ino == L.cur_ino) {
                /* The rename failed: still the same file. */
                L.end = L.cur_base + new_size;
                return;
        }
        /* log.1 was renamed over: a follower still in it will be told what it missed. */
        L.prev_rd = safe_close(L.prev_rd);
        L.prev_rd = L.cur_rd;
        L.prev_base = L.cur_base;
        L.cur_base += old_size;
        L.end = L.cur_base + (have ? new_size : 0);
        L.cur_ino = have ? st.st_ino : 0;
        L.cur_rd = L.n_behind > 0 ? reopen_read_only(log_fd) : -1;
        release_files();
}

size_t log_followers_poll_fill(struct pollfd *p) {
        size_t n = 0;

        for (unsigned i = 0; i < SHIM_LOG_FOLLOWERS_MAX; i++)
                if (L.f[i].fd >= 0 && L.f[i].behind) {
                        L.polled[n] = i;
                        p[n++] = (struct pollfd){ .fd = L.f[i].fd, .events = POLLOUT };
                }
        return n;
}

void log_followers_poll_dispatch(const struct pollfd *p, size_t n) {
        for (size_t k = 0; k < n; k++) {
                Follower *f = &L.f[L.polled[k]];
                int r;

                /* Dropped meanwhile (its slot maybe taken again), or not polled for this. */
                if (f->fd != p[k].fd || !f->behind || p[k].revents == 0)
                        continue;
                if (p[k].revents & (POLLERR | POLLHUP | POLLNVAL)) {
                        follower_drop(f); /* its reader is gone */
                        continue;
                }
                r = follower_catch_up(f);
                if (r < 0 || (r > 0 && L.draining))
                        follower_drop(f); /* gone, or done */
                else if (r > 0) {
                        f->behind = false;
                        L.n_behind--;
                        release_files();
                } else
                        release_files();
        }
}

/* In the child that serves the followers behind: every other fd of the shim's goes, above all those
 * whose end tells a peer something (an attach client's socket, the container's pty). */
static void close_all_but_followers(void) {
        int keep[SHIM_LOG_FOLLOWERS_MAX + 2];
        size_t n = 0;
        unsigned from = 3;

        for (unsigned i = 0; i < SHIM_LOG_FOLLOWERS_MAX; i++)
                if (L.f[i].fd >= 3)
                        keep[n++] = L.f[i].fd;
        if (L.cur_rd >= 3)
                keep[n++] = L.cur_rd;
        if (L.prev_rd >= 3)
                keep[n++] = L.prev_rd;
        for (size_t i = 1; i < n; i++) /* ascending */
                for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
                        int t = keep[j];
                        keep[j] = keep[j - 1];
                        keep[j - 1] = t;
                }
        for (size_t i = 0; i <= n; i++) {
                unsigned to = i < n ? (unsigned) keep[i] : UINT_MAX;
                if (to > from && syscall(SYS_close_range, from, to - 1, 0) < 0)
                        for (unsigned fd = from; fd < to && fd < 65536; fd++)
                                (void) close((int) fd); /* kernels before 5.9 */
                if (i < n)
                        from = to + 1;
        }
}

void log_followers_finish(void) {
        pid_t pid;

        L.draining = true;
        L.log_fd = -1; /* the shim closed it */
        /* Live followers have every record: the end of the pipe is the end of the log. */
        for (unsigned i = 0; i < SHIM_LOG_FOLLOWERS_MAX; i++)
                if (L.f[i].fd >= 0 && !L.f[i].behind)
                        follower_drop(&L.f[i]);
        if (L.n_behind == 0)
                return;
        /* The supervisor reaps the shim as soon as it hears of the exit: a child takes the followers
         * behind over (and, reparented, is reaped by init). Without it they get EOF early. */
        pid = fork();
        if (pid != 0)
                return;
        (void) prctl(PR_SET_NAME, "berth-shim-log");
        close_all_but_followers();
        while (L.n_behind > 0) {
                struct pollfd p[SHIM_LOG_FOLLOWERS_MAX];
                size_t n = log_followers_poll_fill(p);

                if (poll(p, n, -1) < 0 && errno != EINTR)
                        break;
                log_followers_poll_dispatch(p, n);
        }
        _exit(0);
}
