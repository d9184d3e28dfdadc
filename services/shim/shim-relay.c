/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth-limits.h"
#include "shim-protocol.h"
#include "shim-relay.h"

/* How long the ending shim waits for a client that takes nothing more (shim_relay_settle()). */
#define RELAY_SETTLE_MS 5000
#define RELAY_INPUT_MAX 4096U

typedef struct Target {
        int fd;    /* -1: none, or dropped */
        bool sock; /* send(MSG_DONTWAIT): a socket's file description may be the client's own */
        bool pipe; /* a blocking pipe we could not open again: PIPE_BUF at a time, once poll() says so */
        char buf[SHIM_LOG_LINE_MAX];
        size_t off, len; /* buf[off..len) waits; both 0 when nothing does */
} Target;

static Target targets[SHIM_RELAY_STREAMS] = { { .fd = -1 }, { .fd = -1 } };

/* run -t: terminal input from the session stream (targets[0].fd) into the pty master. */
static struct {
        int pty;   /* not ours (shim.c's stream 0); -1 without a session */
        bool open; /* still reading input */
        char buf[RELAY_INPUT_MAX];
        size_t off, len;
} input = { .pty = -1 };

typedef enum PollKind { POLL_TARGET_0, POLL_TARGET_1, POLL_INPUT, POLL_PTY } PollKind;
static PollKind polled[SHIM_RELAY_POLL_MAX];

/* The target as an fd we may write to without blocking. A pipe (what berthctl passes) is opened again
 * through /proc: O_NONBLOCK on the client's own open file description would reach its other users (a
 * shell sharing it, say). A socket gets MSG_DONTWAIT. Anything else (a regular file, /dev/null) is written
 * as it is. An fd open only for reading is refused: the client gets nothing it could not do itself. */
static int target_prepare(int fd, bool *ret_sock, bool *ret_pipe) {
        struct stat st;
        char path[64];
        int fl = fcntl(fd, F_GETFL), nfd;

        *ret_sock = *ret_pipe = false;
        if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY || fstat(fd, &st) < 0) {
                (void) close(fd);
                return -1;
        }
        if (S_ISSOCK(st.st_mode)) {
                *ret_sock = true;
                return fd;
        }
        if (!S_ISFIFO(st.st_mode) || (fl & O_NONBLOCK))
                return fd;
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        nfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (nfd < 0 && errno != ENXIO) {
                *ret_pipe = true; /* no /proc: the pipe as it is, written so that it cannot block */
                return fd;
        }
        (void) close(fd);
        return nfd; /* -1 (ENXIO): nobody reads it any more */
}

void shim_relay_open(unsigned stream, int fd) {
        if (stream >= SHIM_RELAY_STREAMS || fd < 0)
                return;
        if (targets[stream].fd >= 0)
                (void) close(targets[stream].fd);
        targets[stream].fd = target_prepare(fd, &targets[stream].sock, &targets[stream].pipe);
        targets[stream].off = targets[stream].len = 0;
}

void shim_relay_open_session(int fd, int pty) {
        shim_relay_open(0, fd);
        if (targets[0].fd < 0 || !targets[0].sock || pty < 0)
                return;
        input.pty = pty;
        input.open = true;
}

static void target_drop(Target *t) {
        if (t->fd >= 0)
                (void) close(t->fd);
        t->fd = -1;
        t->off = t->len = 0;
        if (t == &targets[0])
                input.open = false; /* the session is gone both ways */
}

/* Bytes written (0: it would block), or -1: the client is gone. */
static ssize_t target_write(Target *t, const void *p, size_t n) {
        ssize_t k;

        if (t->pipe) {
                /* Room in the pipe (POLLOUT) takes a write of up to PIPE_BUF bytes whole. */
                struct pollfd p = { .fd = t->fd, .events = POLLOUT };
                if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLOUT))
                        return p.revents & (POLLERR | POLLHUP) ? -1 : 0;
                if (n > PIPE_BUF)
                        n = PIPE_BUF;
        }
        do
                k = t->sock ? send(t->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) : write(t->fd, p, n);
        while (k < 0 && errno == EINTR);
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return 0;
        return k < 0 ? -1 : k;
}

/* Writes what waits; false while some still does. */
static bool target_flush(Target *t) {
        while (t->fd >= 0 && t->off < t->len) {
                ssize_t k = target_write(t, t->buf + t->off, t->len - t->off);
                if (k < 0) {
                        target_drop(t);
                        break;
                }
                if (k == 0)
                        return false;
                t->off += (size_t) k;
        }
        t->off = t->len = 0;
        return true;
}

bool shim_relay_blocked(unsigned stream) {
        return stream < SHIM_RELAY_STREAMS && targets[stream].fd >= 0 && targets[stream].len > 0;
}

void shim_relay_output(unsigned stream, const void *buf, size_t n) {
        const char *p = buf;
        Target *t;

        if (stream >= SHIM_RELAY_STREAMS || targets[stream].fd < 0)
                return;
        t = &targets[stream];
        if (target_flush(t))
                while (n > 0) {
                        ssize_t k = target_write(t, p, n);
                        if (k < 0) {
                                target_drop(t);
                                return;
                        }
                        if (k == 0)
                                break;
                        p += k;
                        n -= (size_t) k;
                }
        if (n == 0 || t->fd < 0)
                return;
        if (t->off > 0) {
                memmove(t->buf, t->buf + t->off, t->len - t->off);
                t->len -= t->off;
                t->off = 0;
        }
        /* The loop reads a stream only while its target waits for nothing, one read (SHIM_LOG_LINE_MAX at
         * most) at a time, so this holds; a target that could not take it would be dropped, not waited for.
         */
        if (n > sizeof(t->buf) - t->len) {
                target_drop(t);
                return;
        }
        memcpy(t->buf + t->len, p, n);
        t->len += n;
}

/* Terminal input into the pty; what it cannot take now waits (and no more is read until it took it). */
static void input_flush(void) {
        while (input.off < input.len) {
                ssize_t k = write(input.pty, input.buf + input.off, input.len - input.off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        return;
                if (k <= 0) { /* the pty is gone: input goes nowhere now */
                        input.open = false;
                        break;
                }
                input.off += (size_t) k;
        }
        input.off = input.len = 0;
}

static void input_read(void) {
        ssize_t n = recv(targets[0].fd, input.buf, sizeof(input.buf), MSG_DONTWAIT);

        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                return;
        if (n <= 0) {
                /* The client's input ended (or the client is gone: its output will tell). */
                input.open = false;
                return;
        }
        input.off = 0;
        input.len = (size_t) n;
        input_flush();
}

size_t shim_relay_poll_fill(struct pollfd *p) {
        size_t n = 0;

        for (unsigned i = 0; i < SHIM_RELAY_STREAMS; i++)
                if (shim_relay_blocked(i)) {
                        polled[n] = i == 0 ? POLL_TARGET_0 : POLL_TARGET_1;
                        p[n++] = (struct pollfd){ .fd = targets[i].fd, .events = POLLOUT };
                }
        if (input.open && targets[0].fd >= 0) {
                bool waiting = input.len > 0;
                polled[n] = waiting ? POLL_PTY : POLL_INPUT;
                p[n++] = (struct pollfd){ .fd = waiting ? input.pty : targets[0].fd,
                                          .events = waiting ? POLLOUT : POLLIN };
        }
        return n;
}

void shim_relay_poll_dispatch(const struct pollfd *p, size_t n) {
        for (size_t i = 0; i < n && i < SHIM_RELAY_POLL_MAX; i++) {
                if (!p[i].revents)
                        continue;
                switch (polled[i]) {
                case POLL_TARGET_0:
                case POLL_TARGET_1:
                        (void) target_flush(&targets[polled[i] == POLL_TARGET_0 ? 0 : 1]);
                        break;
                case POLL_INPUT:
                        if (input.open && targets[0].fd >= 0)
                                input_read();
                        break;
                case POLL_PTY:
                        if (input.open)
                                input_flush();
                        break;
                }
        }
}

int shim_relay_resize(int pty, unsigned rows, unsigned cols) {
        struct winsize ws = { .ws_row = (unsigned short) rows, .ws_col = (unsigned short) cols };

        if (pty < 0 || !isatty(pty))
                return ENOTTY;
        if (rows == 0 || cols == 0 || rows > TERMINAL_SIZE_MAX || cols > TERMINAL_SIZE_MAX)
                return EINVAL;
        return ioctl(pty, TIOCSWINSZ, &ws) < 0 ? errno : 0;
}

void shim_relay_settle(unsigned stream) {
        Target *t;

        if (stream >= SHIM_RELAY_STREAMS)
                return;
        t = &targets[stream];
        while (t->fd >= 0 && t->len > 0) {
                struct pollfd p = { .fd = t->fd, .events = POLLOUT };
                int r = poll(&p, 1, RELAY_SETTLE_MS);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0) {
                        target_drop(t);
                        return;
                }
                (void) target_flush(t);
        }
}

void shim_relay_finish(void) {
        for (unsigned i = 0; i < SHIM_RELAY_STREAMS; i++) {
                shim_relay_settle(i);
                target_drop(&targets[i]);
        }
        input.pty = -1;
        input.open = false;
}
