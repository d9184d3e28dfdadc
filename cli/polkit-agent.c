/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bus-call.h"
#include "bus-util.h"
#include "macro.h"
#include "polkit-agent.h"

/* Like systemctl and machinectl: a text agent, registered for our process only (--process PID,START),
 * that tells us on the notify fd once polkitd knows it. Not --fallback: with it, polkitd (122) answers
 * "not authorized" at once instead of asking an agent registered for a process (tests saw it). For
 * our process, it takes precedence over a session's (desktop) agent, as systemctl's does. */
#ifndef POLKIT_AGENT_BINARY_PATH
#define POLKIT_AGENT_BINARY_PATH "/usr/bin/pkttyagent"
#endif
/* pkttyagent connects to the system bus and registers: a second or so on a busy machine. One that has
 * not registered by then is broken; the command goes on without it rather than hang. */
#define POLKIT_AGENT_START_TIMEOUT_MS 10000
#define NOTIFY_FD 3

static bool ask_password;
static bool agent_tried;
static pid_t agent_pid;
static bool close_at_exit;

int polkit_agent_setup_bus(sd_bus *bus, bool ask) {
        ask_password = ask;
        /* Calls go out without the flag until polkit wants to ask (polkit_agent_call); once the agent
         * runs, every call may ask through it. */
        return sd_bus_set_allow_interactive_authorization(bus, ask && agent_pid > 0);
}

/* Our start time in clock ticks (field 22 of /proc/self/stat), so the agent is bound to this process
 * and not to whatever reuses the pid. 0 when unreadable: pkttyagent then looks it up itself. */
static unsigned long long self_start_time(void) {
        _cleanup_fclose_ FILE *f = NULL;
        unsigned long long start = 0;
        char buf[1024], *p;
        size_t n;

        f = fopen("/proc/self/stat", "re");
        if (!f)
                return 0;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = 0;
        /* comm may hold anything, ')' included: the fields go on after the last one. */
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 1,
                         " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                         &start) != 1)
                return 0;
        return start;
}

static void close_other_fds(int keep_max) {
        struct rlimit rl;

        /* SECURITY: the agent runs with our credentials but must see nothing of ours (the bus connection,
         * fds passed on it): only stdio and the notify fd cross. */
        if (close_range((unsigned) keep_max + 1, UINT_MAX, 0) >= 0)
                return;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1 << 20)
                rl.rlim_cur = 1 << 20;
        for (int fd = keep_max + 1; fd < (int) rl.rlim_cur; fd++)
                (void) close(fd);
}

_noreturn_ static void agent_child(pid_t parent, int notify_fd, char *const argv[]) {
        struct sigaction sa = { .sa_handler = SIG_DFL };
        sigset_t none;
        int tty;

        /* Our signal mask and ignored signals would survive the exec: the agent must see SIGTERM. */
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, &sa, NULL);

        /* Gone with us, however we end (a signal, _exit, a crash): the kernel sends SIGTERM. If we
         * already ended before this took effect, go now. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
                _exit(EXIT_FAILURE);

        /* dup2() leaves the copy without O_CLOEXEC; the original goes with the other fds. */
        if (notify_fd != NOTIFY_FD) {
                if (dup2(notify_fd, NOTIFY_FD) < 0)
                        _exit(EXIT_FAILURE);
        } else if (fcntl(NOTIFY_FD, F_SETFD, 0) < 0)
                _exit(EXIT_FAILURE);

        /* pkttyagent prompts on the controlling terminal. Whoever reads our stdout or stderr through a
         * pipe must not see its messages, nor wait for its end: those go to the terminal too. */
        if (!isatty(STDOUT_FILENO) || !isatty(STDERR_FILENO)) {
                tty = open("/dev/tty", O_WRONLY | O_NOCTTY | O_CLOEXEC);
                if (tty < 0)
                        tty = open("/dev/null", O_WRONLY | O_NOCTTY | O_CLOEXEC);
                if (tty < 0)
                        _exit(EXIT_FAILURE);
                if ((!isatty(STDOUT_FILENO) && dup2(tty, STDOUT_FILENO) < 0) ||
                    (!isatty(STDERR_FILENO) && dup2(tty, STDERR_FILENO) < 0))
                        _exit(EXIT_FAILURE);
        }
        close_other_fds(NOTIFY_FD);

        execv(POLKIT_AGENT_BINARY_PATH, argv);
        _exit(127);
}

static int wait_registered(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        struct timespec start, now;
        long elapsed;
        int n;

        /* pkttyagent closes the notify fd once registered; it also closes when the agent exits. */
        (void) clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                (void) clock_gettime(CLOCK_MONOTONIC, &now);
                elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
                if (elapsed >= POLKIT_AGENT_START_TIMEOUT_MS)
                        return -ETIMEDOUT;
                n = poll(&p, 1, (int) (POLKIT_AGENT_START_TIMEOUT_MS - elapsed));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n > 0 && (p.revents & (POLLHUP | POLLERR | POLLIN)))
                        return 0;
        }
}

static void reap(pid_t pid) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

void polkit_agent_close(void) {
        pid_t pid = agent_pid;

        if (pid <= 0)
                return;
        agent_pid = 0;
        /* SIGCONT too: a stopped agent would never act on the SIGTERM, and we would wait forever. */
        (void) kill(pid, SIGTERM);
        (void) kill(pid, SIGCONT);
        reap(pid);
}

int polkit_agent_open(void) {
        _cleanup_close_ int rfd = -EBADF, wfd = -EBADF;
        char process[64], notify[16];
        pid_t parent = getpid(), pid;
        unsigned long long start;
        int fds[2], tty, r;

        if (agent_pid > 0)
                return 1;
        if (agent_tried)
                return 0;
        agent_tried = true;

        /* Root never asks polkit; an agent with nobody to type at it is no use. pkttyagent prompts on
         * the controlling terminal, which a terminal on stdin does not imply (setsid, runuser -l). */
        if (geteuid() == 0 || !isatty(STDIN_FILENO))
                return 0;
        tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (tty < 0)
                return 0;
        tty = safe_close(tty);
        /* Not installed: run without an agent, as without berthctl's. */
        if (access(POLKIT_AGENT_BINARY_PATH, X_OK) < 0)
                return 0;

        start = self_start_time();
        if (start > 0)
                snprintf(process, sizeof(process), "%d,%llu", (int) parent, start);
        else
                snprintf(process, sizeof(process), "%d", (int) parent);
        snprintf(notify, sizeof(notify), "%d", NOTIFY_FD);
        char *const argv[] = {
                (char *) "pkttyagent", (char *) "--notify-fd", notify, (char *) "--process", process, NULL
        };

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        rfd = fds[0];
        wfd = fds[1];

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                agent_child(parent, wfd, argv);

        /* Only the agent may hold the writing end, or its close would never show. */
        wfd = safe_close(wfd);
        r = wait_registered(rfd);
        if (r < 0) {
                (void) kill(pid, SIGKILL);
                reap(pid);
                return r;
        }
        /* Closed because it exited (could not register, or found our own agent already there)? Then
         * there is nothing to stop later; polkitd answers without it. */
        if (waitpid(pid, NULL, WNOHANG) == pid)
                return -ECHILD;

        agent_pid = pid;
        /* Stopped and reaped on every way out through exit(); the kernel's SIGTERM covers the others. */
        if (!close_at_exit && atexit(polkit_agent_close) == 0)
                close_at_exit = true;
        return 1;
}

static int copy_interactive(sd_bus *bus, sd_bus_message *m, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *n = NULL;
        int r;

        /* A sent message is sealed, its flags fixed: the same call again, in a new message. The fds it
         * carries are duplicated; the broker refused before it read any of them. */
        r = sd_bus_message_new_method_call(bus, &n, sd_bus_message_get_destination(m),
                                           sd_bus_message_get_path(m), sd_bus_message_get_interface(m),
                                           sd_bus_message_get_member(m));
        if (r < 0)
                return r;
        r = sd_bus_message_set_allow_interactive_authorization(n, true);
        if (r < 0)
                return r;
        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = sd_bus_message_copy(n, m, true);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(n);
        return 0;
}

int polkit_agent_call(sd_bus *bus, sd_bus_message *m, uint64_t usec, sd_bus_error *ret_error,
                      sd_bus_message **ret_reply) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *again = NULL;
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r, k;

        r = sd_bus_call(bus, m, usec, &error, ret_reply);
        if (r < 0 && ask_password && !sd_bus_message_get_allow_interactive_authorization(m) &&
            sd_bus_error_has_name(&error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED)) {
                /* polkit wants to ask. Without our agent (not installed, broken) an agent of the session
                 * may still answer the repeated call; if none does, it is refused as before. */
                k = polkit_agent_open();
                if (k < 0 && k != -ECHILD)
                        fprintf(stderr, "berthctl: could not start the polkit agent %s: %s\n",
                                POLKIT_AGENT_BINARY_PATH, strerror(-k));
                if (sd_bus_set_allow_interactive_authorization(bus, true) >= 0 &&
                    copy_interactive(bus, m, &again) >= 0) {
                        sd_bus_error_free(&error);
                        r = sd_bus_call(bus, again, usec, &error, ret_reply);
                }
        }
        if (ret_error)
                (void) sd_bus_error_move(ret_error, &error);
        return r;
}

int polkit_agent_call_method(sd_bus *bus, const char *destination, const char *path, const char *interface,
                             const char *member, sd_bus_error *ret_error, sd_bus_message **ret_reply,
                             const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        va_start(ap, types);
        r = bus_message_new_method_callv(bus, &m, destination, path, interface, member, types, ap);
        va_end(ap);
        if (r < 0)
                return r;
        /* As broker_default_timeout(): a password prompt may take a human a while. */
        return polkit_agent_call(bus, m, ask_password ? 10ULL * 60 * 1000000 : 0, ret_error, ret_reply);
}
