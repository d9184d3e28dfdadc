/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* berth-shim: a joiner forked ahead of the next exec.
 *
 * An exec's joiner J joins the init's cgroup by writing cgroup.procs in every hierarchy, and the first
 * such write after a quiet spell waits for an RCU grace period (the kernel switches the readers of its
 * global cgroup_threadgroup_rwsem to their slow path first): 8-15 ms on a 2-core cgroup v1 host, most of
 * an exec (bench/README.md). So when an exec arrives, the shim also forks a spare joiner S, which does
 * the same joining at once, off anyone's critical path, and then waits on its socket for the next exec:
 * that exec's report socket, plan and stdio, which S takes on exactly as a joiner forked for it would
 * (shim_joiner_finish: the plan mapped and checked, P cloned with CLONE_PARENT and reported).
 *
 * SECURITY: S is a joiner like J: not dumpable, dies with the shim, holds no fd of the host but its
 * socket to us, in the container's cgroup and namespaces but not in its pid namespace (setns() moves
 * only its children), so no process of the container can see, signal or ptrace it. What it is handed
 * is what J would have been handed, and it checks the plan as J does. A join that failed is reported
 * on the exec it is given, with J's messages.
 *
 * One spare at most. It counts in the container's pids and freezes with it, so it does not stay for a
 * container nobody execs into: it is killed after SHIM_SPARE_IDLE_SEC without an exec, and when the
 * container ends (before the exit record, so that the container's cgroup is empty then). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shim-exec.h"
#include "shim-spare.h"

/* report, plan, stdin, stdout, stderr */
#define SPARE_FDS_MAX 5U

static struct {
        pid_t pid; /* 0: none */
        int ctl;   /* our end of its socket */
        uint64_t idle_until_ms;
} spare = { .ctl = -1 };

static uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000U + (uint64_t) ts.tv_nsec / 1000000U;
}

static void spare_forget(void) {
        if (spare.ctl >= 0)
                (void) close(spare.ctl);
        spare.ctl = -1;
        spare.pid = 0;
}

/* S: joins now, then waits for one exec. An empty read (we closed the socket) ends it. */
static _Noreturn void spare_main(int ctl, pid_t init_pid) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * SPARE_FDS_MAX)];
        } control;
        int keep[] = { ctl }, fds[SPARE_FDS_MAX], stdio[3] = { -1, -1, -1 }, r;
        char why[512] = "";
        uint32_t flags = 0;
        size_t n = 0, k = 2;
        ssize_t got;

        shim_joiner_prepare(keep, 1);
        r = shim_joiner_enter(init_pid, why, sizeof(why));
        for (;;) {
                struct iovec iov = { .iov_base = &flags, .iov_len = sizeof(flags) };
                struct msghdr mh = { .msg_iov = &iov,
                                     .msg_iovlen = 1,
                                     .msg_control = control.buf,
                                     .msg_controllen = sizeof(control.buf) };

                got = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC);
                if (got < 0 && errno == EINTR)
                        continue;
                if (got != (ssize_t) sizeof(flags) || (mh.msg_flags & MSG_CTRUNC))
                        _exit(0);
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                                n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                                memcpy(fds, CMSG_DATA(c), n * sizeof(int));
                        }
                break;
        }
        (void) close(ctl);
        if (n < 2)
                _exit(0);
        for (int i = 0; i < 3; i++)
                if (flags & (SHIM_EXEC_FD_STDIN << i) && k < n)
                        stdio[i] = fds[k++];
        if (k != n || (flags & ~(SHIM_EXEC_FD_STDIN | SHIM_EXEC_FD_STDOUT | SHIM_EXEC_FD_STDERR)))
                shim_joiner_fail(fds[0], EBADMSG, "Bad exec hand-over");
        if (r < 0)
                shim_joiner_fail(fds[0], -r, why);
        shim_joiner_finish(fds[0], fds[1], stdio);
}

void shim_spare_ensure(pid_t init_pid) {
        int sp[2];
        pid_t pid;

        if (spare.pid > 0 || init_pid <= 0)
                return;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                return;
        pid = fork();
        if (pid < 0) {
                (void) close(sp[0]);
                (void) close(sp[1]);
                return;
        }
        if (pid == 0) {
                (void) close(sp[0]);
                spare_main(sp[1], init_pid);
        }
        (void) close(sp[1]);
        spare.pid = pid;
        spare.ctl = sp[0];
        spare.idle_until_ms = now_ms() + SHIM_SPARE_IDLE_SEC * 1000U;
}

bool shim_spare_take(uint32_t flags, int report, int plan_fd, const int stdio[3]) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * SPARE_FDS_MAX)];
        } control = {};
        int fds[SPARE_FDS_MAX] = { report, plan_fd };
        size_t n = 2;
        struct iovec iov = { .iov_base = &flags, .iov_len = sizeof(flags) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf };
        bool ok;

        if (spare.pid <= 0)
                return false;
        flags &= SHIM_EXEC_FD_STDIN | SHIM_EXEC_FD_STDOUT | SHIM_EXEC_FD_STDERR;
        for (int i = 0; i < 3; i++)
                if (flags & (SHIM_EXEC_FD_STDIN << i))
                        fds[n++] = stdio[i];
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
        ok = sendmsg(spare.ctl, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t) sizeof(flags);
        /* It is this exec's joiner now (or gone): reaped as any joiner is. */
        if (!ok)
                (void) kill(spare.pid, SIGKILL);
        spare_forget();
        return ok;
}

bool shim_spare_reaped(pid_t pid) {
        if (spare.pid <= 0 || pid != spare.pid)
                return false;
        spare_forget();
        return true;
}

int shim_spare_timeout_ms(void) {
        uint64_t now;

        if (spare.pid <= 0)
                return -1;
        now = now_ms();
        return now >= spare.idle_until_ms ? 0 : (int) (spare.idle_until_ms - now);
}

void shim_spare_expire(void) {
        if (spare.pid > 0 && now_ms() >= spare.idle_until_ms) {
                /* Reaped by the loop as any joiner is. */
                (void) kill(spare.pid, SIGKILL);
                spare_forget();
        }
}

void shim_spare_stop(void) {
        pid_t pid = spare.pid;
        int status;

        if (pid <= 0)
                return;
        (void) kill(pid, SIGKILL);
        spare_forget();
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
}
