/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Issue 12, finding 6: the fetcher's own system call filter (fetcher-seccomp.h), installed in a forked
 * child: calls a fetcher never makes fail with EPERM, the ones it makes still work. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fetcher-seccomp.h"

static void test_f6_fetcher_filter(void) {
        int status;
        pid_t pid = fork();

        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                char err[256] = "";
                int fd;

                if (fetcher_install_seccomp(err, sizeof(err)) < 0)
                        _exit(90);
                /* refused */
                execl("/bin/true", "true", NULL);
                if (errno != EPERM)
                        _exit(91);
                if (syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0) >= 0 || errno != EPERM)
                        _exit(92);
                if (syscall(SYS_bpf, 0, 0, 0) >= 0 || errno != EPERM)
                        _exit(93);
                if (syscall(SYS_process_vm_readv, getppid(), 0, 0, 0, 0, 0) >= 0 || errno != EPERM)
                        _exit(94);
                if (syscall(SYS_open_by_handle_at, AT_FDCWD, 0, 0) >= 0 || errno != EPERM)
                        _exit(95);
                /* allowed: what a fetcher does */
                fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd < 0 || close(fd) < 0)
                        _exit(96);
                fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || close(fd) < 0)
                        _exit(97);
                _exit(0);
        }
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/fetcher/f6-seccomp-filter", test_f6_fetcher_filter);
        return g_test_run();
}
