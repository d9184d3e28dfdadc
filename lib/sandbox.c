/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <stdio.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "sandbox.h"

/* A sanitizer build (meson -Db_sanitize=address,undefined) differs in the sandbox only by what the
 * sanitizer runtime calls itself: its error reports (write to stderr, which we keep), the shadow memory
 * it maps and unmaps, and reading its own maps when it reports. (issue 12, finding 13) */
#if defined(__SANITIZE_ADDRESS__) || defined(BERTH_SANITIZE)
#define SANDBOX_SANITIZER_SYSCALLS                                                                          \
        "sigaltstack", "rt_sigaction", "prctl", "sched_yield", "readlinkat", "getppid",
#else
#define SANDBOX_SANITIZER_SYSCALLS
#endif

static inline void cap_freep(cap_t *p) {
        if (*p)
                (void) cap_free(*p);
}

static inline void seccomp_releasep(scmp_filter_ctx *p) {
        if (*p)
                seccomp_release(*p);
}

/* Records which step failed and why ("<step>: <strerror>") in err, and returns -|r|. The child sends
 * this text to the service, which puts it in the job's error: under systemd most failures here are
 * the unit's own sandbox refusing a step, and the message must say which. */
static int fail(char *err, size_t err_size, int r, const char *fmt, ...) _printf_(4, 5);
static int fail(char *err, size_t err_size, int r, const char *fmt, ...) {
        va_list ap;
        int n = 0;

        r = -abs(r);
        if (err && err_size > 0) {
                va_start(ap, fmt);
                n = vsnprintf(err, err_size, fmt, ap);
                va_end(ap);
                if (n >= 0 && (size_t) n < err_size)
                        (void) snprintf(err + n, err_size - (size_t) n, ": %s", strerror(-r));
        }
        log_debug("Sandbox setup failed: %s", err && err_size > 0 ? err : strerror(-r));
        return r;
}

static int close_all_but(const int *keep, size_t n_keep) {
        int sorted[16];
        size_t n = 0;
        unsigned lo = 0;

        if (n_keep + 1 > ELEMENTSOF(sorted))
                return -E2BIG;
        sorted[n++] = STDERR_FILENO; /* the service's log stream */
        for (size_t i = 0; i < n_keep; i++)
                if (keep[i] >= 0)
                        sorted[n++] = keep[i];
        /* insertion sort: a handful of fds */
        for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
                        int t = sorted[j];
                        sorted[j] = sorted[j - 1];
                        sorted[j - 1] = t;
                }

        /* SECURITY: nothing of the service (bus connection, other jobs' fds, the store's dir fds) is
         * reachable from the child; close_range() also catches fds we do not know we have. */
        for (size_t i = 0; i < n; i++) {
                if ((unsigned) sorted[i] > lo &&
                    syscall(SYS_close_range, lo, (unsigned) sorted[i] - 1, 0) < 0)
                        return -errno;
                lo = (unsigned) sorted[i] + 1;
        }
        if (syscall(SYS_close_range, lo, ~0U, 0) < 0)
                return -errno;
        return 0;
}

/* An empty, read-only tmpfs as the whole file system: for workers that work on the fds they kept. */
static int enter_empty_root(char *err, size_t err_size) {
        /* SECURITY: no path leads anywhere: the import/export child reaches the content store and the
         * user's stream through its fds only, and libraries cannot open files behind its back. */
        if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
                  "size=4k,mode=0555") < 0)
                return fail(err, err_size, errno, "mounting an empty tmpfs");
        if (chdir("/tmp") < 0)
                return fail(err, err_size, errno, "entering the empty root");
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return fail(err, err_size, errno, "pivot_root() into the empty root");
        if (umount2(".", MNT_DETACH) < 0)
                return fail(err, err_size, errno, "detaching the old root");
        if (chdir("/") < 0)
                return fail(err, err_size, errno, "entering the new root");
        return 0;
}

static int enter_root(const char *root_path, int root_fd, int *ret_root_fd, char *err, size_t err_size) {
        _cleanup_close_ int new_root = -EBADF;
        struct stat a, b;

        /* Our mounts must not propagate back to the host's namespace. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return fail(err, err_size, errno, "making / private");
        if (!root_path)
                return enter_empty_root(err, err_size);
        if (mount(root_path, root_path, NULL, MS_BIND, NULL) < 0)
                return fail(err, err_size, errno, "bind mounting '%s'", root_path);
        /* SECURITY: nodev: a device node a layer ships (/dev/mem, /dev/sda) can be created but never
         * opened by the child; nosuid, noexec: nothing from the layer runs with privilege. */
        if (mount(NULL, root_path, NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return fail(err, err_size, errno, "remounting '%s' nosuid,nodev,noexec", root_path);
        if (chdir(root_path) < 0)
                return fail(err, err_size, errno, "entering '%s'", root_path);
        /* SECURITY: after pivot_root and detaching the old root, the snapshot dir is "/" of this mount
         * namespace: even a fully compromised child (an exploit in the decompressor, CVE-2014-9357) has no
         * path, no ".." and no fd that leads anywhere else. */
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return fail(err, err_size, errno, "pivot_root() into the snapshot");
        if (umount2(".", MNT_DETACH) < 0)
                return fail(err, err_size, errno, "detaching the old root");
        if (chdir("/") < 0)
                return fail(err, err_size, errno, "entering the new root");

        new_root = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (new_root < 0)
                return fail(err, err_size, errno, "opening the new root");
        /* The path came from our own store (0700 root), but check it is the directory the parent
         * created and gave us as an fd. */
        if (fstat(new_root, &a) < 0 || fstat(root_fd, &b) < 0)
                return fail(err, err_size, errno, "inspecting the new root");
        if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
                return fail(err, err_size, EXDEV, "'%s' is not the snapshot directory we were given",
                            root_path);
        /* The old fd points into the host's mount and could walk ".." out of it: close it. */
        safe_close(root_fd);
        *ret_root_fd = TAKE_FD(new_root);
        return 0;
}

static bool holds_no_capabilities(void) {
        _cleanup_(cap_freep) cap_t cur = cap_get_proc(), none = cap_init();

        return cur && none && cap_compare(cur, none) == 0;
}

static int drop_capabilities(uint64_t kept, char *err, size_t err_size) {
        _cleanup_(cap_freep) cap_t caps = NULL, cur = NULL;
        cap_value_t keep[64];
        int n = 0;

        for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++)
                if (kept & (UINT64_C(1) << c))
                        keep[n++] = c;

        /* SECURITY: the bounding set first, so nothing can ever regain what we drop. Dropping needs
         * CAP_SETPCAP; under the shipped unit the bounding set already holds only what we keep, so only
         * capabilities actually present are dropped. */
        for (cap_value_t c = 0; c <= CAP_LAST_CAP; c++) {
                if (kept & (UINT64_C(1) << c))
                        continue;
                if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) <= 0)
                        continue;
                if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
                        /* An unprivileged process (the fetcher's archive child where namespaces are
                         * refused) may not shrink its bounding set, and needs not: it holds no
                         * capabilities, and no_new_privs (set next) means it can never gain one. */
                        if (errno == EPERM && holds_no_capabilities())
                                break;
                        return fail(err, err_size, errno, "dropping capability %d from the bounding set", c);
                }
        }
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return fail(err, err_size, errno, "clearing ambient capabilities");

        caps = cap_init(); /* all clear, inheritable included */
        if (!caps)
                return fail(err, err_size, ENOMEM, "cap_init()");
        if (n > 0 && (cap_set_flag(caps, CAP_EFFECTIVE, n, keep, CAP_SET) < 0 ||
                      cap_set_flag(caps, CAP_PERMITTED, n, keep, CAP_SET) < 0))
                return fail(err, err_size, errno, "building the capability set");
        /* Already so (an unprivileged service such as the fetcher holds none): no capset(), which a
         * service manager's filter may refuse (systemd's ~@privileged). */
        cur = cap_get_proc();
        if (cur && cap_compare(cur, caps) == 0)
                return 0;
        if (cap_set_proc(caps) < 0)
                return fail(err, err_size, errno, "setting capabilities");
        return 0;
}

/* What extraction needs, nothing more: file I/O on fds, *at() creation and metadata calls, memory,
 * time, exit. SECURITY: no execve, no socket/connect/sendmsg, no mount/pivot_root/unshare/setns, no
 * clone/fork, no ptrace, no kill (uid 0 could signal other root processes), no ioctl, no
 * open_by_handle_at, no bpf/keyctl/perf. */
static const char *const unpack_syscalls[] = {
        "read",
        "write",
        "pread64",
        "pwrite64",
        "readv",
        "writev",
        "lseek",
        "close",
        "fstat",
        "newfstatat",
        "statx",
        "openat",
        "openat2",
        "getdents64",
        "mkdirat",
        "mknodat",
        "symlinkat",
        "linkat",
        "unlinkat",
        "ftruncate",
        "fchown",
        "fchownat",
        "fchmod",
        "fchmodat",
        "utimensat",
        "fsetxattr",
        "fgetxattr",
        "fsync",
        "fdatasync",
        "syncfs",
        "umask",
        "brk",
        "munmap",
        "mremap",
        "madvise",
        "futex",
        "getrandom",
        "clock_gettime",
        "gettimeofday",
        "getpid",
        "gettid",
        "rt_sigreturn",
        "rt_sigprocmask",
        "exit",
        "exit_group",
        "sysinfo", /* glibc qsort() asks for the physical memory size on big arrays */
        SANDBOX_SANITIZER_SYSCALLS NULL,
};

const SandboxProfile sandbox_profile_unpack = {
        .caps = SANDBOX_CAPS_EFFECTIVE,
        .syscalls = unpack_syscalls,
};

/* A filter with default_action for every system call but the listed ones (names this architecture does
 * not have are skipped) and restart_syscall, which the kernel itself issues to resume a sleep or wait
 * a signal interrupted (systemd's @default has it for the same reason). */
static int filter_new(uint32_t default_action, const char *const *syscalls, scmp_filter_ctx *ret, char *err,
                      size_t err_size) {
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
        int r;

        ctx = seccomp_init(default_action);
        if (!ctx)
                return fail(err, err_size, ENOMEM, "seccomp_init()");
        /* Real errnos from the kernel instead of libseccomp's ECANCELED. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
        if (r < 0 && r != -EOPNOTSUPP && r != -EINVAL)
                return fail(err, err_size, r, "configuring libseccomp");
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(restart_syscall), 0);
        if (r < 0)
                return fail(err, err_size, r, "adding 'restart_syscall' to the seccomp filter");
        for (const char *const *name = syscalls; *name; name++) {
                int nr = seccomp_syscall_resolve_name(*name);
                if (nr == __NR_SCMP_ERROR)
                        continue; /* not on this architecture */
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
                if (r < 0)
                        return fail(err, err_size, r, "adding '%s' to the seccomp filter", *name);
        }
        *ret = TAKE_PTR(ctx);
        return 0;
}

static int filter_load(scmp_filter_ctx ctx, char *err, size_t err_size) {
        int r = seccomp_load(ctx);
        if (r < 0)
                return fail(err, err_size, r, "loading the seccomp filter");
        return 0;
}

static int install_seccomp(const char *const *syscalls, char *err, size_t err_size) {
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
        uint32_t action = SECCOMP_RET_KILL_PROCESS;
        int r;

        /* libseccomp reports a refused seccomp() as some other error (ENOMEM from seccomp_init() on
         * libseccomp 2.5, ECANCELED from seccomp_load()). Ask the kernel directly first, so that a
         * service sandbox which forbids seccomp() itself is named as the cause. */
        if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) < 0)
                return fail(
                        err, err_size, errno,
                        "the seccomp() system call is refused (a service SystemCallFilter= must allow it)");

        /* SECURITY: default kill, so a missing entry is a crash we see in tests, never a silent hole. */
        r = filter_new(SCMP_ACT_KILL_PROCESS, syscalls, &ctx, err, err_size);
        if (r < 0)
                return r;

        /* SECURITY: memory may never become executable (no shellcode staging, W^X). */
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                             SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
        if (r < 0)
                return fail(err, err_size, r, "adding 'mmap' to the seccomp filter");
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                             SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
        if (r < 0)
                return fail(err, err_size, r, "adding 'mprotect' to the seccomp filter");

        /* SECURITY (issue 12, f5): fcntl() only for descriptor flags and duplication. F_SETOWN/F_SETSIG
         * would let this root process aim signals at any host process through async I/O, F_SETLEASE and
         * F_NOTIFY would watch files; none of that is extraction. */
        static const int fcntl_ok[] = { F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD, F_DUPFD_CLOEXEC };
        for (size_t i = 0; i < ELEMENTSOF(fcntl_ok); i++) {
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1,
                                     SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t) fcntl_ok[i]));
                if (r < 0)
                        return fail(err, err_size, r, "adding 'fcntl' to the seccomp filter");
        }

        return filter_load(ctx, err, err_size);
}

int sandbox_restrict_profile(const SandboxProfile *p, char *err, size_t err_size) {
        int r;

        r = drop_capabilities(p->caps, err, err_size);
        if (r < 0)
                return r;
        /* SECURITY: nothing the child could exec (it cannot, see the filter) gains privileges. */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return fail(err, err_size, errno, "PR_SET_NO_NEW_PRIVS");
        return install_seccomp(p->syscalls, err, err_size);
}

int sandbox_restrict(char *err, size_t err_size) {
        return sandbox_restrict_profile(&sandbox_profile_unpack, err, err_size);
}

static int write_file(const char *path, const char *text) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        ssize_t l = (ssize_t) strlen(text);

        if (fd < 0)
                return -errno;
        if (write(fd, text, (size_t) l) != l)
                return -errno;
        return 0;
}

/* A user namespace in which we are who we were (one uid, one gid mapped), holding the capabilities
 * that creating the other namespaces and the mounts need, over them only. */
static int enter_user_namespace(uid_t uid, gid_t gid, char *err, size_t err_size) {
        char map[64];
        int r;

        r = write_file("/proc/self/setgroups", "deny");
        if (r < 0)
                return fail(err, err_size, r, "denying setgroups() in the user namespace");
        (void) snprintf(map, sizeof(map), "%u %u 1", (unsigned) uid, (unsigned) uid);
        r = write_file("/proc/self/uid_map", map);
        if (r < 0)
                return fail(err, err_size, r, "writing the uid map");
        (void) snprintf(map, sizeof(map), "%u %u 1", (unsigned) gid, (unsigned) gid);
        r = write_file("/proc/self/gid_map", map);
        if (r < 0)
                return fail(err, err_size, r, "writing the gid map");
        return 0;
}

int sandbox_enter_profile(const SandboxProfile *p, const char *root_path, int root_fd, const int *keep_fds,
                          size_t n_keep_fds, int *ret_root_fd, char *err, size_t err_size) {
        sigset_t none;
        pid_t parent = getppid();
        uid_t uid = getuid();
        gid_t gid = getgid();
        int keep[16], flags;
        size_t n = n_keep_fds;
        int r;

        /* SECURITY: a child must never outlive the service that would commit or discard its work. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                return fail(err, err_size, errno, "PR_SET_PDEATHSIG");
        if (getppid() != parent)
                return fail(err, err_size, ESRCH, "the service exited");
        sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
                return fail(err, err_size, errno, "resetting the signal mask");

        if (n_keep_fds + 1 > ELEMENTSOF(keep))
                return fail(err, err_size, E2BIG, "too many fds to keep");
        if (n_keep_fds > 0)
                memcpy(keep, keep_fds, n_keep_fds * sizeof(int));
        if (root_path)
                keep[n++] = root_fd;
        r = close_all_but(keep, n);
        if (r < 0)
                return fail(err, err_size, r, "closing inherited fds");

        /* SECURITY: no network at all (an empty network namespace has only a down loopback), and a mount
         * namespace of our own. */
        flags = CLONE_NEWNET | CLONE_NEWNS | (p->user_namespace ? CLONE_NEWUSER : 0);
        if (unshare(flags) < 0) {
                r = -errno;
                if (!p->namespaces_optional || !(errno == EPERM || errno == EINVAL || errno == ENOSPC ||
                                                 errno == EUSERS || errno == ENOSYS))
                        return fail(err, err_size, errno, "unshare(CLONE_NEWNET|CLONE_NEWNS%s)",
                                    p->user_namespace ? "|CLONE_NEWUSER" : "");
                /* The service manager (RestrictNamespaces=) or the kernel refuses namespaces: the unit's
                 * own sandbox is the file system view, and the filter below allows no socket(). */
                log_debug("Namespaces refused (%s), continuing with the seccomp filter alone", strerror(-r));
                if (ret_root_fd)
                        *ret_root_fd = -EBADF;
                return sandbox_restrict_profile(p, err, err_size);
        }
        if (p->user_namespace) {
                r = enter_user_namespace(uid, gid, err, err_size);
                if (r < 0)
                        return r;
        }

        r = enter_root(root_path, root_fd, ret_root_fd, err, err_size);
        if (r < 0)
                return r;

        return sandbox_restrict_profile(p, err, err_size);
}

int sandbox_enter(const char *root_path, int root_fd, const int *keep_fds, size_t n_keep_fds,
                  int *ret_root_fd, char *err, size_t err_size) {
        return sandbox_enter_profile(&sandbox_profile_unpack, root_path, root_fd, keep_fds, n_keep_fds,
                                     ret_root_fd, err, err_size);
}

int sandbox_filter_service(const char *const *syscalls, char *err, size_t err_size) {
        _cleanup_(seccomp_releasep) scmp_filter_ctx ctx = NULL;
        int r;

        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return fail(err, err_size, errno, "PR_SET_NO_NEW_PRIVS");
        r = filter_new(SCMP_ACT_ERRNO(EPERM), syscalls, &ctx, err, err_size);
        if (r < 0)
                return r;
        return filter_load(ctx, err, err_size);
}
