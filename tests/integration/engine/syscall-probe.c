/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Built static by tests/integration/test_engine.py and run inside a container: tries each system call the
 * default seccomp profile must refuse (security.md S15) and prints "<name> <errno>" per line (0 = it
 * succeeded). Arguments are harmless: where a call succeeded it would change nothing outside the probe. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef __NR_clone3
#define __NR_clone3 435
#endif

static void report(const char *name, long r) {
        printf("%s %d\n", name, r < 0 ? errno : 0);
}

static long raw(long nr, long a, long b, long c, long d, long e) {
        return syscall(nr, a, b, c, d, e);
}

#if defined(__x86_64__)
static long int80(long nr, long a, long b, long c) {
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
        if (ret < 0 && ret > -4096) {
                errno = (int) -ret;
                return -1;
        }
        return ret;
}
#endif

int main(void) {
        char buf[64] = {};
        long r;

        setvbuf(stdout, NULL, _IOLBF, 0);
        report("fsopen", raw(__NR_fsopen, (long) "tmpfs", 0, 0, 0, 0));
        report("fsmount", raw(__NR_fsmount, -1, 0, 0, 0, 0));
        report("fspick", raw(__NR_fspick, AT_FDCWD, (long) "/", 0, 0, 0));
        report("move_mount", raw(__NR_move_mount, -1, (long) "", -1, (long) "", 0));
        report("open_tree", raw(__NR_open_tree, AT_FDCWD, (long) "/", 1 /* OPEN_TREE_CLONE */, 0, 0));
        report("mount_setattr", raw(__NR_mount_setattr, -1, (long) "", 0, 0, 0));
        report("mount", raw(__NR_mount, (long) "none", (long) "/tmp", (long) "tmpfs", 0, 0));
        report("unshare_user", raw(__NR_unshare, CLONE_NEWUSER, 0, 0, 0, 0));
        r = raw(__NR_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
        if (r == 0)
                _exit(0);
        if (r > 0)
                waitpid((pid_t) r, NULL, 0);
        report("clone_newuser", r);
        report("clone3", raw(__NR_clone3, (long) buf, 64, 0, 0, 0));
        report("keyctl", raw(__NR_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0, 0, 0));
        report("add_key", raw(__NR_add_key, (long) "user", (long) "probe", (long) "x", 1, -3));
        report("userfaultfd", raw(__NR_userfaultfd, 0, 0, 0, 0, 0));
        report("bpf", raw(__NR_bpf, 0, (long) buf, 0, 0, 0));
        report("perf_event_open", raw(__NR_perf_event_open, (long) buf, 0, -1, -1, 0));
        report("open_by_handle_at", raw(__NR_open_by_handle_at, AT_FDCWD, (long) buf, 0, 0, 0));
        report("kexec_load", raw(__NR_kexec_load, 0, 0, 0, 0, 0));
        report("io_uring_setup", raw(__NR_io_uring_setup, 1, (long) buf, 0, 0, 0));
        report("tiocsti_high", raw(__NR_ioctl, 0, (long) (0x5412UL | (1UL << 32)), (long) "x", 0, 0));
        report("tiocsti", raw(__NR_ioctl, 0, 0x5412, (long) "x", 0, 0));
        report("tioclinux", raw(__NR_ioctl, 0, 0x541C, (long) buf, 0, 0));
        report("socket_vsock", raw(__NR_socket, 40, SOCK_STREAM, 0, 0, 0));
        report("personality_bad", raw(__NR_personality, 0x0400000 /* READ_IMPLIES_EXEC */, 0, 0, 0, 0));
#if defined(__x86_64__)
        report("i386_unshare_user", int80(310 /* ia32 unshare */, CLONE_NEWUSER, 0, 0));
        report("i386_keyctl", int80(288 /* ia32 keyctl */, 0, -3, 0));
        report("x32_keyctl", raw(0x40000000L | __NR_keyctl, 0, -3, 0, 0, 0));
#endif
        /* and what must keep working */
        report("getpid", raw(__NR_getpid, 0, 0, 0, 0, 0));
        report("socket_inet", raw(__NR_socket, AF_INET, SOCK_DGRAM, 0, 0, 0));
        report("ioctl_fionread", raw(__NR_ioctl, 1, FIONREAD, (long) buf, 0, 0));
        return 0;
}
