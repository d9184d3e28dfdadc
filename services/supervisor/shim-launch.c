/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fs-util.h"
#include "macro.h"
#include "shim-launch.h"
#include "shim-protocol.h"

extern char **environ;

void shim_launch_reset_signals(void) {
        struct sigaction sa = { .sa_handler = SIG_DFL };
        sigset_t none;

        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, &sa, NULL);
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
}

int shim_launch_bind(int dir_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/" SHIM_SOCKET_FILE, dir_fd);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) unlinkat(dir_fd, SHIM_SOCKET_FILE, 0);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, SHIM_PEERS_MAX) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

int shim_launch_exec(const Manager *m, const ShimLaunch *l) {
        char buf[12][32];
        const char *argv[32];
        size_t n = 0;
        int keep[] = { l->dir_fd,
                       l->listen_fd,
                       l->start_fd,
                       l->exec_err_fd,
                       l->ready_fd,
                       l->log_out_fd,
                       l->log_err_fd,
                       -1,
                       -1,
                       -1 };
        static const char *const relay_opts[3] = { "--relay-out-fd", "--relay-err-fd", "--session-fd" };
        const int relay[3] = { l->relay_out_fd, l->relay_err_fd, l->session_fd };

        snprintf(buf[0], sizeof(buf[0]), "%d", (int) l->init_pid);
        snprintf(buf[1], sizeof(buf[1]), "%d", l->dir_fd);
        snprintf(buf[2], sizeof(buf[2]), "%d", l->listen_fd);
        snprintf(buf[3], sizeof(buf[3]), "%d", l->start_fd);
        snprintf(buf[4], sizeof(buf[4]), "%d", l->exec_err_fd);
        snprintf(buf[5], sizeof(buf[5]), "%d", l->ready_fd);
        snprintf(buf[6], sizeof(buf[6]), "%" PRIu64, l->created_at);
        snprintf(buf[7], sizeof(buf[7]), "%d", l->log_out_fd);
        snprintf(buf[8], sizeof(buf[8]), "%d", l->log_err_fd);
        argv[n++] = "berth-shim";
        argv[n++] = "--id";
        argv[n++] = l->id;
        argv[n++] = "--init-pid";
        argv[n++] = buf[0];
        argv[n++] = "--state-dir-fd";
        argv[n++] = buf[1];
        argv[n++] = "--listen-fd";
        argv[n++] = buf[2];
        argv[n++] = "--start-fd";
        argv[n++] = buf[3];
        argv[n++] = "--exec-err-fd";
        argv[n++] = buf[4];
        argv[n++] = "--ready-fd";
        argv[n++] = buf[5];
        argv[n++] = "--created-at";
        argv[n++] = buf[6];
        if (l->log_out_fd >= 0) {
                argv[n++] = "--log-out-fd";
                argv[n++] = buf[7];
        }
        if (l->log_err_fd >= 0) {
                argv[n++] = "--log-err-fd";
                argv[n++] = buf[8];
        }
        for (size_t i = 0; i < 3; i++)
                if (relay[i] > STDERR_FILENO) {
                        snprintf(buf[9 + i], sizeof(buf[9 + i]), "%d", relay[i]);
                        argv[n++] = relay_opts[i];
                        argv[n++] = buf[9 + i];
                        keep[7 + i] = relay[i];
                }
        char log_max[32];
        if (l->log_max > 0) {
                snprintf(log_max, sizeof(log_max), "%" PRIu64, l->log_max);
                argv[n++] = "--log-max";
                argv[n++] = log_max;
        }
        assert(n < ELEMENTSOF(argv));
        argv[n] = NULL;

        for (size_t i = 0; i < ELEMENTSOF(keep); i++)
                if (keep[i] >= 0)
                        (void) fcntl(keep[i], F_SETFD, 0);
        /* The shim's 0-2 are /dev/null: it must hold no terminal or caller pipe open. */
        int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null_fd >= 0) {
                (void) dup3(null_fd, 0, 0);
                (void) dup3(null_fd, 1, 0);
                (void) dup3(null_fd, 2, 0);
        }
        if (m->shim_exe_fd >= 0)
                fexecve(m->shim_exe_fd, (char *const *) argv, environ);
        execv(m->shim_path, (char *const *) argv);
        return -errno;
}
