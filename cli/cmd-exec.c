/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* berthctl exec, attach and top: Container.Exec / Attach / Top. exec passes our own fds 0-2 (or gets a
 * pty master back with -t) and a pipe on which the container's shim writes the process's exit status;
 * the signals it receives go to the process (KillExec, as docker's sig-proxy), our window size to its
 * pty. attach copies between our terminal and a stream joined to a detached container's pty until the
 * detach keys (ctrl-p ctrl-q, as docker) or the container's end; our window size goes to the container's
 * terminal (ResizeTerminal). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "berthctl.h"
#include "bus-names.h"
#include "bus-util.h"
#include "container-cli.h"
#include "escape.h"
#include "fs-util.h"
#include "json-text.h"
#include "polkit-agent.h"

#define DETACH_KEYS_MAX 8

/* ---- the terminal ----------------------------------------------------------------------------------- */

typedef struct Term {
        bool raw;
        struct termios saved;
} Term;

static void term_raw(Term *t, int pty) {
        struct winsize ws;

        if (!isatty(STDIN_FILENO))
                return;
        if (pty >= 0 && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) >= 0)
                (void) ioctl(pty, TIOCSWINSZ, &ws);
        if (tcgetattr(STDIN_FILENO, &t->saved) >= 0) {
                struct termios raw = t->saved;
                cfmakeraw(&raw);
                t->raw = tcsetattr(STDIN_FILENO, TCSANOW, &raw) >= 0;
        }
}

static void term_restore(Term *t) {
        if (t->raw)
                (void) tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
        t->raw = false;
}

/* "<code> <reason>\n" from the status pipe: the exit status, or CLI_EXIT_ERROR without one. */
static int read_status(int fd) {
        char buf[64];
        size_t len = 0;
        ssize_t n;
        int code;

        while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) != 0) {
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                len += (size_t) n;
        }
        buf[len] = 0;
        if (sscanf(buf, "%d", &code) != 1 || code < 0 || code > 255)
                return CLI_EXIT_ERROR;
        return code;
}

/* Copies in → out until in ends; with detach keys, stops on them (returns 1). 0 at the end of src. */
typedef struct Pump {
        int in, out;
        const unsigned char *keys;
        size_t n_keys, matched;
} Pump;

static int pump_once(Pump *p) {
        unsigned char buf[4096], outb[4096 + DETACH_KEYS_MAX];
        size_t o = 0;
        ssize_t n = read(p->in, buf, sizeof(buf));

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 3; /* nothing there now */
        if (n <= 0)
                return 0;
        if (p->n_keys == 0)
                return loop_write(p->out, buf, (size_t) n) < 0 ? 0 : 2;
        for (ssize_t i = 0; i < n; i++) {
                if (buf[i] == p->keys[p->matched]) {
                        if (++p->matched == p->n_keys) {
                                (void) loop_write(p->out, outb, o);
                                return 1;
                        }
                        continue;
                }
                /* Not the sequence after all: what was held back goes through. */
                memcpy(outb + o, p->keys, p->matched);
                o += p->matched;
                p->matched = 0;
                if (buf[i] == p->keys[0]) {
                        p->matched = 1;
                        continue;
                }
                outb[o++] = buf[i];
        }
        return loop_write(p->out, outb, o) < 0 ? 0 : 2;
}

/* ---- signals ---------------------------------------------------------------------------------------- */

static const int forwarded_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

/* A signalfd for the forwarded signals (with forward) and SIGWINCH (with winch), blocked from now on. */
static int signals_open(bool forward, bool winch) {
        sigset_t mask;

        sigemptyset(&mask);
        for (size_t i = 0; forward && i < ELEMENTSOF(forwarded_signals); i++)
                sigaddset(&mask, forwarded_signals[i]);
        if (winch)
                sigaddset(&mask, SIGWINCH);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        return RET_NERRNO(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
}

/* The next signal from a signalfd, 0 if none. */
static int signal_next(int fd) {
        struct signalfd_siginfo si;

        return read(fd, &si, sizeof(si)) == (ssize_t) sizeof(si) ? (int) si.ssi_signo : 0;
}

/* Our terminal's size to a container's (ResizeTerminal). */
static void send_size(sd_bus *bus, const char *path) {
        struct winsize ws;

        if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0 || ws.ws_col == 0)
                return;
        (void) sd_bus_call_method(bus, BERTH_BROKER_NAME, path, BERTH_BROKER_CONTAINER_IFACE,
                                  "ResizeTerminal", NULL, NULL, "uut", (uint32_t) ws.ws_row,
                                  (uint32_t) ws.ws_col, UINT64_C(0));
}

/* An exec's session: signals to berthctl go to the process; with a pty, our window size to it. */
typedef struct ExecSession {
        sd_bus *bus;
        const char *path;
        const char *name; /* with no path yet (Manager.ExecContainer): resolved at the first signal */
        char *resolved_path;
        uint32_t pid;
        int sigfd, pty;
} ExecSession;

static void exec_signals(ExecSession *e) {
        int sig;

        while ((sig = signal_next(e->sigfd)) > 0) {
                if (sig == SIGWINCH) {
                        struct winsize ws;
                        if (e->pty >= 0 && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) >= 0)
                                (void) ioctl(e->pty, TIOCSWINSZ, &ws);
                        continue;
                }
                if (!e->path) {
                        if (container_resolve(e->bus, e->name, "exec", &e->resolved_path) < 0)
                                continue;
                        e->path = e->resolved_path;
                }
                /* Gone already (ESRCH): its status is on its way. */
                (void) sd_bus_call_method(e->bus, BERTH_BROKER_NAME, e->path, BERTH_BROKER_CONTAINER_IFACE,
                                          "KillExec", NULL, NULL, "uit", e->pid, (int32_t) sig, UINT64_C(0));
        }
}

/* Without -t: the process's status, forwarding signals meanwhile. */
static int exec_wait(ExecSession *e, int status_fd) {
        for (;;) {
                struct pollfd p[2] = { { .fd = status_fd, .events = POLLIN },
                                       { .fd = e->sigfd, .events = POLLIN } };
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents)
                        exec_signals(e);
                if (p[0].revents)
                        break;
        }
        return read_status(status_fd);
}

/* ---- exec ------------------------------------------------------------------------------------------- */

static void exec_help(void) {
        printf("berthctl exec [OPTIONS] NAME CMD [ARG...]\n\n"
               "Run a command in a running container, with the container's own confinement.\n\n"
               "  -t --tty             Allocate a pseudo-terminal\n"
               "  -i --interactive     Keep stdin attached\n"
               "  -d --detach          Run in the background (no output, no exit status)\n"
               "  -u --user USER       name|uid[:group|gid], resolved in the container\n"
               "  -e --env K=V         Set an environment variable (repeatable)\n"
               "  -w --workdir DIR     Working directory inside the container\n");
}

/* The options document of Container.Exec. Written with json-text.h, not json-glib: see berthctl.c. */
static char *exec_options_json(char **args, char **env, const char *user, const char *workdir, bool tty,
                               bool detach) {
        char *buf = NULL;
        size_t size = 0;
        struct winsize ws;
        bool failed;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        fputs("{\"args\":[", f);
        for (char **a = args; *a; a++) {
                if (a != args)
                        fputc(',', f);
                json_fputs_string(f, *a);
        }
        fputs("],\"env\":[", f);
        for (char **e = env; *e; e++) {
                if (e != env)
                        fputc(',', f);
                json_fputs_string(f, *e);
        }
        fputs("],\"user\":", f);
        json_fputs_string(f, user ?: "");
        fputs(",\"workdir\":", f);
        json_fputs_string(f, workdir ?: "");
        fprintf(f, ",\"tty\":%s,\"detach\":%s", tty ? "true" : "false", detach ? "true" : "false");
        /* Our terminal's size from the process's start: a full-screen program measures it at once. */
        if (tty && isatty(STDIN_FILENO) && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) >= 0 && ws.ws_row > 0 &&
            ws.ws_col > 0)
                fprintf(f, ",\"tty_size\":[%u,%u]", (unsigned) ws.ws_row, (unsigned) ws.ws_col);
        fputc('}', f);
        /* A memory stream fails only for memory: an earlier write (ferror) or the final flush. */
        failed = ferror(f);
        if (fclose(f) != 0 || failed)
                return mfree(buf);
        return buf;
}

/* -t: our terminal ↔ the pty until the process's status arrives. */
static int exec_tty_loop(ExecSession *e, int pty, int status_fd, bool interactive) {
        Term t = {};
        Pump in = { .in = STDIN_FILENO, .out = pty }, out = { .in = pty, .out = STDOUT_FILENO };
        bool in_open = interactive, out_open = true;
        int code = CLI_EXIT_ERROR;

        if (interactive)
                term_raw(&t, pty);
        else if (isatty(STDIN_FILENO)) {
                struct winsize ws;
                if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) >= 0)
                        (void) ioctl(pty, TIOCSWINSZ, &ws);
        }
        for (;;) {
                struct pollfd p[4] = {
                        { .fd = out_open ? pty : -1, .events = POLLIN },
                        { .fd = in_open ? STDIN_FILENO : -1, .events = POLLIN },
                        { .fd = status_fd, .events = POLLIN },
                        { .fd = e->sigfd, .events = POLLIN },
                };
                if (poll(p, 4, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[3].revents)
                        exec_signals(e);
                if (p[0].revents && pump_once(&out) == 0)
                        out_open = false; /* EIO: every slave fd is closed */
                if (p[1].revents && pump_once(&in) == 0)
                        in_open = false;
                if (p[2].revents) {
                        /* The process is gone: what it wrote last, then its status. */
                        (void) fcntl(pty, F_SETFL, fcntl(pty, F_GETFL) | O_NONBLOCK);
                        while (out_open && pump_once(&out) == 2)
                                ;
                        code = read_status(status_fd);
                        break;
                }
        }
        term_restore(&t);
        return code;
}

/* Container.Exec on path, or Manager.ExecContainer on name: our own fds 0-2 unless detached or with a
 * terminal, and the status pipe's writer. */
static int exec_call(sd_bus *bus, const char *path, const char *name, const char *json, bool detach,
                     bool tty, bool interactive, int status_w, sd_bus_error *error, sd_bus_message **reply) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (path)
                r = sd_bus_message_new_method_call(bus, &m, BERTH_BROKER_NAME, path,
                                                   BERTH_BROKER_CONTAINER_IFACE, "Exec");
        else {
                r = broker_new_call(bus, &m, "ExecContainer");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", name);
        }
        if (r >= 0)
                r = sd_bus_message_append(m, "s", json);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sh}");
        if (r >= 0 && !detach && !tty) {
                /* The process writes straight into our terminal or pipe: these are our own fds. */
                if (interactive)
                        r = sd_bus_message_append(m, "{sh}", "stdin", STDIN_FILENO);
                if (r >= 0)
                        r = sd_bus_message_append(m, "{sh}", "stdout", STDOUT_FILENO);
                if (r >= 0)
                        r = sd_bus_message_append(m, "{sh}", "stderr", STDERR_FILENO);
        }
        if (r >= 0 && status_w >= 0)
                r = sd_bus_message_append(m, "{sh}", "status", status_w);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "t", UINT64_C(0));
        if (r < 0)
                return r;
        return polkit_agent_call(bus, m, broker_default_timeout(), error, reply);
}

int cmd_exec(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },          { "tty", no_argument, NULL, 't' },
                { "interactive", no_argument, NULL, 'i' },   { "detach", no_argument, NULL, 'd' },
                { "user", required_argument, NULL, 'u' },    { "env", required_argument, NULL, 'e' },
                { "workdir", required_argument, NULL, 'w' }, {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ char **env = NULL;
        _cleanup_free_ char *json = NULL;
        size_t n_env = 0;
        _cleanup_close_ int status_r = -EBADF, status_w = -EBADF, pty = -EBADF, sigfd = -EBADF;
        const char *user = NULL, *workdir = NULL;
        bool tty = false, interactive = false, detach = false;
        int c, r, fds[2];
        uint32_t pid;

        /* At most one -e per argument, and a NULL after them. */
        env = calloc(argc + 1, sizeof(char *));
        if (!env)
                return -ENOMEM;
        optind = 0;
        while ((c = getopt_long(argc, argv, "+htidu:e:w:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        exec_help();
                        return 0;
                case 't':
                        tty = true;
                        break;
                case 'i':
                        interactive = true;
                        break;
                case 'd':
                        detach = true;
                        break;
                case 'u':
                        user = optarg;
                        break;
                case 'e':
                        if (!strchr(optarg, '=') || optarg[0] == '=') {
                                fprintf(stderr, "berthctl: exec: -e takes K=V\n");
                                return -EINVAL;
                        }
                        env[n_env++] = optarg;
                        break;
                case 'w':
                        workdir = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        if (argc - optind < 2) {
                fprintf(stderr, "berthctl: exec: expected a container name and a command (see --help)\n");
                return -EINVAL;
        }
        if (detach && tty) {
                fprintf(stderr, "berthctl: exec: -d and -t do not go together\n");
                return -EINVAL;
        }
        json = exec_options_json(argv + optind + 1, env, user, workdir, tty, detach);
        if (!json)
                return -ENOMEM;

        r = broker_connect(&bus);
        if (r < 0)
                return r;
        if (!detach) {
                if (pipe2(fds, O_CLOEXEC) < 0)
                        return -errno;
                status_r = fds[0];
                status_w = fds[1];
                /* Blocked before the process starts: a signal that comes meanwhile waits for its pid. */
                sigfd = signals_open(true, tty);
                if (sigfd < 0)
                        return sigfd;
        }
        /* One call by name (Manager.ExecContainer). A broker without it (or a bus policy that predates it:
         * the bus refuses) gets GetContainer, then Exec, each authorised as before. */
        r = exec_call(bus, NULL, argv[optind], json, detach, tty, interactive, status_w, &error, &reply);
        if (r < 0 && (sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_METHOD) ||
                      sd_bus_error_has_name(&error, SD_BUS_ERROR_ACCESS_DENIED))) {
                sd_bus_error_free(&error);
                r = container_resolve(bus, argv[optind], "exec", &path);
                if (r < 0)
                        return r;
                r = exec_call(bus, path, NULL, json, detach, tty, interactive, status_w, &error, &reply);
        }
        status_w = safe_close(status_w); /* the shim holds the only writer now */
        if (r == -EINVAL && !sd_bus_error_is_set(&error)) {
                /* sd-bus refused to append a string: D-Bus carries UTF-8 text only. */
                fprintf(stderr, "berthctl: exec: the container name, command, environment, user and "
                                "directory must be valid UTF-8\n");
                return r;
        }
        if (r < 0) {
                (void) report_bus_error("exec", &error, r);
                /* Not executable or not found: the status (126/127) comes as for any end. */
                if (sd_bus_error_has_name(&error, BERTH_ERROR_EXEC_FAILED) && status_r >= 0)
                        return read_status(status_r);
                return r;
        }
        r = sd_bus_message_read(reply, "u", &pid);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "h");
        if (r >= 0 && tty) {
                int fd;
                r = sd_bus_message_read(reply, "h", &fd);
                if (r > 0) {
                        pty = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                        if (pty < 0)
                                r = -errno;
                } else if (r == 0)
                        r = -EIO;
        }
        if (r < 0) {
                fprintf(stderr, "berthctl: exec: bad reply: %s\n", strerror(-r));
                return r;
        }
        reply = sd_bus_message_unref(reply);
        if (detach)
                return 0;
        /* The shim tells the end through the pipe; the broker hears only of signals to forward. */
        ExecSession e = {
                .bus = bus, .path = path, .name = argv[optind], .pid = pid, .sigfd = sigfd, .pty = pty
        };
        r = tty ? exec_tty_loop(&e, pty, status_r, interactive) : exec_wait(&e, status_r);
        free(e.resolved_path);
        return r;
}

/* ---- attach ----------------------------------------------------------------------------------------- */

static int parse_detach_keys(const char *s, unsigned char *keys, size_t *n) {
        _cleanup_free_ char *copy = strdup(s);
        char *p, *state = copy;

        if (!copy)
                return -ENOMEM;
        *n = 0;
        /* strsep, not strtok: an empty item ("ctrl-p,,q") is an error, not skipped. */
        while ((p = strsep(&state, ","))) {
                unsigned char k;
                if (*n >= DETACH_KEYS_MAX)
                        return -E2BIG;
                if (startswith(p, "ctrl-") && strlen(p) == 6) {
                        char ch = p[5];
                        if (ch >= 'a' && ch <= 'z')
                                k = (unsigned char) (ch - 'a' + 1);
                        else if (ch == '@' || ch == '[' || ch == '\\' || ch == ']' || ch == '^' || ch == '_')
                                k = (unsigned char) (ch - '@');
                        else
                                return -EINVAL;
                } else if (strlen(p) == 1)
                        k = (unsigned char) p[0];
                else
                        return -EINVAL;
                keys[(*n)++] = k;
        }
        return *n > 0 ? 0 : -EINVAL;
}

int cmd_attach(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "detach-keys", required_argument, NULL, 'k' },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int stream = -EBADF, sigfd = -EBADF;
        unsigned char keys[DETACH_KEYS_MAX];
        size_t n_keys = 0;
        const char *spec = "ctrl-p,ctrl-q";
        Term t = {};
        int c, r, fd, result = 0;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("berthctl attach [--detach-keys KEYS] NAME\n\n"
                               "Join the terminal of a container started with -d -t; ctrl-p ctrl-q "
                               "detaches\n"
                               "and leaves it running.\n");
                        return 0;
                case 'k':
                        spec = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        if (argc - optind != 1) {
                fprintf(stderr, "berthctl: attach: expected one container name (see --help)\n");
                return -EINVAL;
        }
        if (parse_detach_keys(spec, keys, &n_keys) < 0) {
                fprintf(stderr, "berthctl: attach: invalid --detach-keys '%s'\n", spec);
                return -EINVAL;
        }
        r = broker_connect(&bus);
        if (r >= 0)
                r = container_resolve(bus, argv[optind], "attach", &path);
        if (r >= 0)
                r = container_call(bus, path, "Attach", &reply, "attach", "t", UINT64_C(0));
        if (r >= 0)
                r = sd_bus_message_read(reply, "h", &fd);
        if (r < 0)
                return r;
        stream = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (stream < 0)
                return -errno;
        reply = sd_bus_message_unref(reply);

        Pump in = { .in = STDIN_FILENO, .out = stream, .keys = keys, .n_keys = n_keys };
        Pump out = { .in = stream, .out = STDOUT_FILENO };
        bool in_open = true;
        /* Our window size is the container terminal's while we are attached: now and on each change. */
        sigfd = signals_open(false, true);
        if (sigfd < 0)
                return sigfd;
        if (isatty(STDIN_FILENO))
                send_size(bus, path);
        term_raw(&t, -1);
        for (;;) {
                struct pollfd p[3] = { { .fd = stream, .events = POLLIN },
                                       { .fd = in_open ? STDIN_FILENO : -1, .events = POLLIN },
                                       { .fd = sigfd, .events = POLLIN } };
                if (poll(p, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[2].revents)
                        while (signal_next(sigfd) == SIGWINCH)
                                send_size(bus, path);
                if (p[0].revents && pump_once(&out) == 0) {
                        /* The container ended: its status, as docker attach reports it. */
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *w = NULL;
                        int32_t code;
                        const char *reason;
                        term_restore(&t);
                        if (container_call(bus, path, "Wait", &w, "attach", "t", UINT64_C(0)) >= 0 &&
                            sd_bus_message_read(w, "is", &code, &reason) >= 0)
                                result = container_exit_status(code);
                        break;
                }
                if (p[1].revents) {
                        r = pump_once(&in);
                        if (r == 1) {
                                term_restore(&t);
                                fprintf(stderr, "\r\nberthctl: attach: detached from '%s'\n", argv[optind]);
                                break;
                        }
                        if (r == 0) {
                                /* Our input ended: the container's does not. */
                                in_open = false;
                                (void) shutdown(stream, SHUT_WR);
                        }
                }
        }
        term_restore(&t);
        return result;
}

/* ---- top -------------------------------------------------------------------------------------------- */

int cmd_top(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        uint32_t pid, cpid, uid;
        const char *cmd;
        int r;

        if (wants_help(argc, argv)) {
                printf("berthctl top NAME\n\nList a running container's processes: host pid, pid in the "
                       "container, uid, command.\n");
                return 0;
        }
        if (argc != 2) {
                fprintf(stderr, "berthctl: top: expected one container name (see --help)\n");
                return -EINVAL;
        }
        r = broker_connect(&bus);
        if (r >= 0)
                r = container_resolve(bus, argv[1], "top", &path);
        if (r >= 0)
                r = container_call(bus, path, "Top", &reply, "top", "t", UINT64_C(0));
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(uuus)");
        if (r < 0)
                return r;
        printf("%-8s %-8s %-6s %s\n", "PID", "CPID", "UID", "COMMAND");
        while ((r = sd_bus_message_read(reply, "(uuus)", &pid, &cpid, &uid, &cmd)) > 0) {
                /* A command line is the container's to choose, escape sequences included. */
                _cleanup_free_ char *safe = escape_untrusted(cmd, 0, 0);
                if (!safe)
                        return -ENOMEM;
                printf("%-8u %-8u %-6u %s\n", pid, cpid, uid, safe);
        }
        return r < 0 ? r : 0;
}
