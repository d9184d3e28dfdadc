/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A foreground `run`: Wait first (so the exit cannot be missed, even of a --rm container the broker
 * removes at once), then Start; signals to berthctl go to the container's init. The container's shim
 * logs its output and copies it to us (services/shim/shim-relay.h): without -t into the two pipes we
 * passed as its stdout and stderr, which we copy to ours; with -t through the session stream it gave
 * back, while our terminal is raw and its window size goes to the container's (ResizeTerminal). */
#include <poll.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "berthctl.h"
#include "bus-names.h"
#include "bus-util.h"
#include "container-cli.h"
#include "fs-util.h"
#include "polkit-agent.h"

static const int forwarded_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

typedef struct Attach {
        sd_bus *bus;
        sd_event *event;
        const char *path;
        int pty;    /* -t: the session stream (socket) */
        int out[2]; /* without -t: the pipes of the container's stdout and stderr */
        bool exited;
        int status;
        bool tty_raw;
        struct termios saved;
        sd_event_source *stdin_source, *pty_source, *out_source[2];
} Attach;

/* Our terminal's size to the container's (synchronously before Start, so its first output fits). */
static void send_size(Attach *a, bool sync) {
        struct winsize ws;

        if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0 || ws.ws_col == 0)
                return;
        if (sync)
                (void) sd_bus_call_method(a->bus, BERTH_BROKER_NAME, a->path, BERTH_BROKER_CONTAINER_IFACE,
                                          "ResizeTerminal", NULL, NULL, "uut", (uint32_t) ws.ws_row,
                                          (uint32_t) ws.ws_col, UINT64_C(0));
        else
                (void) sd_bus_call_method_async(a->bus, NULL, BERTH_BROKER_NAME, a->path,
                                                BERTH_BROKER_CONTAINER_IFACE, "ResizeTerminal", NULL, NULL,
                                                "uut", (uint32_t) ws.ws_row, (uint32_t) ws.ws_col,
                                                UINT64_C(0));
}

/* Without -t: one of the container's pipes to our fd 1 or 2. */
static int on_output(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Attach *a = userdata;
        unsigned i = fd == a->out[0] ? 0 : 1;
        char buf[65536];
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n > 0) {
                (void) loop_write(i == 0 ? STDOUT_FILENO : STDERR_FILENO, buf, (size_t) n);
                return 0;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        a->out_source[i] = sd_event_source_disable_unref(a->out_source[i]);
        return 0;
}

/* After the exit: what is left in the pipes (the shim closed them before it reported the exit). */
static void drain_output(Attach *a) {
        for (unsigned i = 0; i < 2; i++) {
                if (!a->out_source[i])
                        continue;
                a->out_source[i] = sd_event_source_disable_unref(a->out_source[i]);
                for (;;) {
                        struct pollfd p = { .fd = a->out[i], .events = POLLIN };
                        char buf[65536];
                        ssize_t n;

                        /* Bounded: should anything else hold a pipe's write end, we still end. */
                        if (poll(&p, 1, 10000) <= 0)
                                break;
                        n = read(a->out[i], buf, sizeof(buf));
                        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                                continue;
                        if (n <= 0 ||
                            loop_write(i == 0 ? STDOUT_FILENO : STDERR_FILENO, buf, (size_t) n) < 0)
                                break;
                }
        }
}

static int on_wait(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Attach *a = userdata;
        const char *reason = NULL;
        int32_t code;

        a->exited = true;
        if (sd_bus_message_is_method_error(reply, NULL)) {
                (void) report_bus_error("run", sd_bus_message_get_error(reply), -EIO);
                a->status = CLI_EXIT_ERROR;
        } else if (sd_bus_message_read(reply, "is", &code, &reason) < 0)
                a->status = CLI_EXIT_ERROR;
        else
                a->status = container_exit_status(code);
        return sd_event_exit(a->event, 0);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Attach *a = userdata;

        if (si->ssi_signo == SIGWINCH) {
                send_size(a, false);
                return 0;
        }
        /* The container's init gets it, as if it had been sent to the container. */
        (void) sd_bus_call_method_async(a->bus, NULL, BERTH_BROKER_NAME, a->path,
                                        BERTH_BROKER_CONTAINER_IFACE, "Kill", NULL, NULL, "it",
                                        (int32_t) si->ssi_signo, UINT64_C(0));
        return 0;
}

static void copy_out(Attach *a) {
        char buf[16384];
        ssize_t n;

        for (;;) {
                n = read(a->pty, buf, sizeof(buf));
                if (n <= 0)
                        break;
                if (loop_write(STDOUT_FILENO, buf, (size_t) n) < 0)
                        break;
        }
}

static int on_pty(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Attach *a = userdata;
        char buf[16384];
        ssize_t n;

        n = read(fd, buf, sizeof(buf));
        if (n > 0) {
                (void) loop_write(STDOUT_FILENO, buf, (size_t) n);
                return 0;
        }
        if (n < 0 && errno == EAGAIN)
                return 0;
        /* EIO: no process has the terminal open any more. */
        a->pty_source = sd_event_source_disable_unref(a->pty_source);
        return 0;
}

static int on_stdin(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Attach *a = userdata;
        char buf[4096];
        ssize_t n;

        n = read(fd, buf, sizeof(buf));
        if (n > 0) {
                (void) loop_write(a->pty, buf, (size_t) n);
                return 0;
        }
        if (n < 0 && errno == EAGAIN)
                return 0;
        /* End of our input: the terminal's end-of-file character tells the container so. */
        if (n == 0 && !a->tty_raw) {
                char eof = 4;
                (void) loop_write(a->pty, &eof, 1);
        }
        a->stdin_source = sd_event_source_disable_unref(a->stdin_source);
        return 0;
}

static int setup_tty(Attach *a, bool interactive) {
        int r;

        if (isatty(STDIN_FILENO)) {
                send_size(a, true);
                if (interactive && tcgetattr(STDIN_FILENO, &a->saved) >= 0) {
                        struct termios raw = a->saved;

                        cfmakeraw(&raw);
                        if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) >= 0)
                                a->tty_raw = true;
                }
        }
        r = fcntl(a->pty, F_SETFL, fcntl(a->pty, F_GETFL) | O_NONBLOCK);
        if (r < 0)
                return -errno;
        r = sd_event_add_io(a->event, &a->pty_source, a->pty, EPOLLIN, on_pty, a);
        if (r < 0)
                return r;
        if (interactive) {
                r = sd_event_add_io(a->event, &a->stdin_source, STDIN_FILENO, EPOLLIN, on_stdin, a);
                if (r == -EPERM)
                        r = 0; /* a regular file as stdin: nothing to poll, nothing forwarded */
                if (r < 0)
                        return r;
        }
        return 0;
}

int container_attach_run(sd_bus *bus, const char *path, int pty, const int out[2], bool tty,
                         bool interactive, bool rm) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        Attach a = { .bus = bus,
                     .path = path,
                     .pty = pty,
                     .out = { out ? out[0] : -EBADF, out ? out[1] : -EBADF },
                     .status = CLI_EXIT_ERROR };
        sigset_t mask;
        int r;

        r = sd_event_default(&event);
        if (r < 0)
                goto fail;
        a.event = event;
        r = sd_bus_attach_event(bus, event, 0);
        if (r < 0)
                goto fail;
        sigemptyset(&mask);
        for (size_t i = 0; i < ELEMENTSOF(forwarded_signals); i++)
                sigaddset(&mask, forwarded_signals[i]);
        if (tty)
                sigaddset(&mask, SIGWINCH);
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);
        for (size_t i = 0; i < ELEMENTSOF(forwarded_signals); i++) {
                r = sd_event_add_signal(event, NULL, forwarded_signals[i], on_signal, &a);
                if (r < 0)
                        goto fail;
        }
        if (tty) {
                r = sd_event_add_signal(event, NULL, SIGWINCH, on_signal, &a);
                if (r < 0)
                        goto fail;
                r = setup_tty(&a, interactive);
                if (r < 0)
                        goto fail;
        }
        for (unsigned i = 0; i < 2; i++) {
                if (a.out[i] < 0)
                        continue;
                if (fcntl(a.out[i], F_SETFL, fcntl(a.out[i], F_GETFL) | O_NONBLOCK) < 0) {
                        r = -errno;
                        goto fail;
                }
                r = sd_event_add_io(event, &a.out_source[i], a.out[i], EPOLLIN, on_output, &a);
                if (r < 0)
                        goto fail;
        }

        /* Wait before Start: the broker answers both in order, so the exit cannot be missed. */
        r = container_wait_async(bus, path, on_wait, &a);
        if (r < 0)
                goto fail;
        r = polkit_agent_call_method(bus, BERTH_BROKER_NAME, path, BERTH_BROKER_CONTAINER_IFACE, "Start",
                                     &error, NULL, "t", UINT64_C(0));
        if (r < 0) {
                (void) report_bus_error("run", &error, r);
                /* An exec failure is an exit (127/126) the Wait reports; anything else left a created
                 * container: gone with --rm. */
                if (!sd_bus_error_has_name(&error, BERTH_ERROR_EXEC_FAILED)) {
                        if (rm)
                                (void) container_call(bus, path, "Remove", NULL, "rm", "t", UINT64_C(1));
                        goto done;
                }
        }
        r = sd_event_loop(event);
        if (r < 0)
                goto fail;
        if (tty) {
                /* What the container wrote just before it exited. */
                copy_out(&a);
        }
        drain_output(&a);
        goto done;

fail:
        fprintf(stderr, "berthctl: run: %s\n", strerror(-r));
done:
        if (a.tty_raw)
                (void) tcsetattr(STDIN_FILENO, TCSANOW, &a.saved);
        sd_event_source_disable_unref(a.pty_source);
        sd_event_source_disable_unref(a.stdin_source);
        for (unsigned i = 0; i < 2; i++)
                sd_event_source_disable_unref(a.out_source[i]);
        safe_close(pty);
        (void) sd_bus_detach_event(bus);
        fflush(stdout);
        return a.exited ? a.status : CLI_EXIT_ERROR;
}
