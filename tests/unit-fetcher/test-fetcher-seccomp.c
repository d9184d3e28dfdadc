/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Issue 12, finding 6: the fetcher's own system call filter (fetcher-seccomp.h), installed in a forked
 * child: calls a fetcher never makes fail with EPERM, the ones it makes still work. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fetcher-seccomp.h"
#include "macro.h"
#include "sandbox.h"

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

/* Waits until pid sleeps in nanosleep()/clock_nanosleep() (its first field of /proc/PID/syscall). */
static void wait_until_sleeping(pid_t pid) {
        char path[64];

        (void) snprintf(path, sizeof(path), "/proc/%d/syscall", (int) pid);
        for (;;) {
                g_autofree char *text = NULL;
                long nr;

                g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
                if (sscanf(text, "%ld", &nr) == 1 && (nr == SYS_nanosleep || nr == SYS_clock_nanosleep))
                        return;
                g_usleep(1000);
        }
}

/* A sleep that a stop and continue interrupt is resumed by the kernel with restart_syscall(), which
 * must be allowed: else the fetcher's filter turns it into EPERM (and a killing filter into SIGSYS)
 * whenever the service is frozen (cgroup freezer), stopped or attached to by a debugger. */
static void test_f6_sleep_survives_stop_and_continue(void) {
        int p[2], status;
        char c;
        pid_t pid;

        g_assert_cmpint(pipe2(p, O_CLOEXEC), ==, 0);
        pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                struct timespec t = { .tv_sec = 2 };
                char err[256] = "";

                if (fetcher_install_seccomp(err, sizeof(err)) < 0)
                        _exit(90);
                if (write(p[1], "r", 1) != 1)
                        _exit(91);
                if (nanosleep(&t, NULL) < 0)
                        _exit(errno == EPERM ? 92 : 93);
                _exit(0);
        }
        close(p[1]);
        g_assert_cmpint(read(p[0], &c, 1), ==, 1);
        close(p[0]);
        wait_until_sleeping(pid);
        g_assert_cmpint(kill(pid, SIGSTOP), ==, 0);
        g_assert_cmpint(waitpid(pid, &status, WUNTRACED), ==, pid);
        g_assert_true(WIFSTOPPED(status));
        g_assert_cmpint(kill(pid, SIGCONT), ==, 0);
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

static const char *const fallback_syscalls[] = { "read", "write", "close", "exit", "exit_group", NULL };

/* The archive child's case under systemd (RestrictNamespaces=yes): unshare() is refused with EPERM.
 * This is systemd's filter in miniature. */
static int refuse_unshare(void) {
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        int r;

        if (!ctx)
                return -ENOMEM;
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 0);
        if (r >= 0)
                r = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ? -errno : 0;
        if (r >= 0)
                r = seccomp_load(ctx);
        seccomp_release(ctx);
        return r;
}

/* Issue 12, finding 6 (archive-job.c): where namespaces are refused, a profile with namespaces_optional
 * goes on with capabilities dropped and its killing filter (which has no socket()); one without it
 * fails, naming the step. */
static void test_f6_namespaces_refused(gconstpointer data) {
        bool optional = GPOINTER_TO_INT(data);
        const SandboxProfile profile = {
                .caps = 0,
                .syscalls = fallback_syscalls,
                .user_namespace = true,
                .namespaces_optional = optional,
        };
        int up[2], down[2], status;
        char c, own[64], its[64], path[64];
        pid_t pid;
        ssize_t n;

        g_assert_cmpint(pipe2(up, O_CLOEXEC), ==, 0);
        g_assert_cmpint(pipe2(down, O_CLOEXEC), ==, 0);
        pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                char err[256] = "";
                int keep[] = { up[1], down[0] }, r;

                if (refuse_unshare() < 0)
                        _exit(90);
                r = sandbox_enter_profile(&profile, NULL, -EBADF, keep, ELEMENTSOF(keep), NULL, err,
                                          sizeof(err));
                if (r < 0) {
                        /* only the step that failed, for the parent to check */
                        if (write(up[1], err, strlen(err)) < 0)
                                _exit(82);
                        _exit(r == -EPERM ? 80 : 81);
                }
                if (write(up[1], "r", 1) != 1 || read(down[0], &c, 1) != 1)
                        _exit(91);
                /* the filter allows no socket(): killed */
                (void) socket(AF_INET, SOCK_STREAM, 0);
                _exit(92);
        }
        close(up[1]);
        close(down[0]);
        char msg[256] = "";
        n = read(up[0], msg, sizeof(msg) - 1);
        g_assert_cmpint(n, >, 0);
        if (!optional) {
                g_assert_true(g_str_has_prefix(msg, "unshare(CLONE_NEWNET|CLONE_NEWNS|CLONE_NEWUSER)"));
                g_assert_nonnull(strstr(msg, strerror(EPERM)));
                g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
                g_assert_true(WIFEXITED(status));
                g_assert_cmpint(WEXITSTATUS(status), ==, 80);
                return;
        }
        g_assert_cmpstr(msg, ==, "r");
        /* no namespace of its own, no capabilities, no_new_privs, a filter of its own */
        (void) snprintf(path, sizeof(path), "/proc/%d/ns/net", (int) pid);
        n = readlink("/proc/self/ns/net", own, sizeof(own) - 1);
        g_assert_cmpint(n, >, 0);
        own[n] = 0;
        n = readlink(path, its, sizeof(its) - 1);
        g_assert_cmpint(n, >, 0);
        its[n] = 0;
        g_assert_cmpstr(its, ==, own);
        {
                g_autofree char *st = NULL;

                (void) snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
                g_assert_true(g_file_get_contents(path, &st, NULL, NULL));
                g_assert_nonnull(strstr(st, "\nCapEff:\t0000000000000000\n"));
                g_assert_nonnull(strstr(st, "\nNoNewPrivs:\t1\n"));
                g_assert_nonnull(strstr(st, "\nSeccomp_filters:\t2\n"));
        }
        g_assert_cmpint(write(down[1], "g", 1), ==, 1);
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFSIGNALED(status));
        g_assert_cmpint(WTERMSIG(status), ==, SIGSYS);
        close(up[0]);
        close(down[1]);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/fetcher/f6-seccomp-filter", test_f6_fetcher_filter);
        g_test_add_func("/fetcher/f6-sleep-survives-stop-and-continue",
                        test_f6_sleep_survives_stop_and_continue);
        g_test_add_data_func("/fetcher/f6-namespaces-refused/fallback", GINT_TO_POINTER(1),
                             test_f6_namespaces_refused);
        g_test_add_data_func("/fetcher/f6-namespaces-refused/required", GINT_TO_POINTER(0),
                             test_f6_namespaces_refused);
        return g_test_run();
}
