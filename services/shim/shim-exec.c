/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* berth-shim: processes started in a running container (exec) and clients attached to its pty.
 *
 * An exec is three processes: the shim forks a joiner J, which enters the init's cgroup and namespaces
 * and clone()s the process P with CLONE_PARENT, so that P is the shim's child (we reap it and report
 * its status) and, since J joined the init's pid namespace before the clone, a process of the
 * container's pid namespace. J reports P's pid, then lets P go (a pipe), and exits. P sets up stdio, closes
 * every other fd, takes the container's identity and confinement from the supervisor's plan, and execs:
 *
 *   shim ── fork ──► J: not dumpable; ns fds opened; cgroup joined; setns (mnt last); plan mapped
 *     ▲                └── clone(CLONE_PARENT) ──► P: setsid, stdio/pty, close fds, cwd, rlimits,
 *     │                                              seccomp/caps/user as the engine orders them, execve
 *     └──────────── report socket: PID, [PTY], ERROR | EOF (execve succeeded: the socket is O_CLOEXEC)
 *
 * J is usually forked ahead, joined before the exec arrives (the spare joiner, shim-spare.c).
 *
 * libc only, like the rest of the shim. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "shim-exec.h"
#include "shim-spare.h"

/* The shim is built against musl without kernel headers: the few kernel ABI definitions it needs. */
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER 0x5441
#endif
#define DEVPTS_MAGIC 0x1cd1
#define SECCOMP_MODE_FILTER_OP 1 /* SECCOMP_SET_MODE_FILTER */
#define CAP_VERSION_3 0x20080522
#define RESOLVE_NO_MAGICLINKS_ 0x02
#define RESOLVE_NO_SYMLINKS_ 0x04
#define RESOLVE_IN_ROOT_ 0x10

struct open_how_ {
        uint64_t flags, mode, resolve;
};
struct cap_header_ {
        uint32_t version;
        int pid;
};
struct cap_data_ {
        uint32_t effective, permitted, inheritable;
};
struct bpf_insn_ { /* struct sock_filter */
        uint16_t code;
        uint8_t jt, jf;
        uint32_t k;
};
struct bpf_prog_ { /* struct sock_fprog */
        unsigned short len;
        struct bpf_insn_ *filter;
};

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif
#define REQUIRED_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

typedef struct Exec {
        bool used;
        pid_t pid;     /* P, once J reported it */
        int report;    /* our end of the report socket; -1 at its end */
        int peer;      /* the requester's connection (our own dup), -1 once answered */
        int status_fd; /* "<code> <reason>\n" once P is reaped, or -1 */
        int pty;       /* the master P sent, for the reply */
        int error, exec_status;
        char message[sizeof(((ShimExecReport *) 0)->message)];
        bool reaped;
} Exec;

typedef struct Attach {
        int fd;  /* our end of the client's stream socket, -1 when unused */
        int pty; /* our own dup of the master */
} Attach;

static Exec execs[SHIM_EXECS_MAX];
static int cap_last = -1; /* the kernel's highest capability, read once by the shim (read_cap_last()) */
static bool finishing;    /* the container ended: no new spare joiner */
static Attach attaches[SHIM_ATTACH_MAX] = { [0 ... SHIM_ATTACH_MAX - 1] = { -1, -1 } };

static int xclose(int fd) {
        if (fd >= 0)
                (void) close(fd);
        return -1;
}

void shim_close_fds(int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                fds[i] = xclose(fds[i]);
}

ssize_t shim_recv_request(int fd, ShimRequest *q, int fds[static SHIM_REQUEST_FDS_MAX], size_t *ret_n) {
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int) * SHIM_REQUEST_FDS_MAX)];
        } control;
        struct iovec iov = { .iov_base = q, .iov_len = sizeof(*q) };
        struct msghdr mh = { .msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        ssize_t n;

        *ret_n = 0;
        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
                return n;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t j = 0; j < k; j++) {
                        int got;
                        memcpy(&got, CMSG_DATA(c) + j * sizeof(int), sizeof(int));
                        if (*ret_n < SHIM_REQUEST_FDS_MAX)
                                fds[(*ret_n)++] = got;
                        else
                                (void) close(got);
                }
        }
        if (mh.msg_flags & MSG_CTRUNC) {
                shim_close_fds(fds, *ret_n);
                *ret_n = 0;
                errno = EBADMSG;
                return -1;
        }
        return n;
}

static void reply(int peer, int error, const char *message, pid_t pid, int pass_fd) {
        ShimReply r = {
                .magic = SHIM_PROTOCOL_MAGIC,
                .version = SHIM_PROTOCOL_VERSION,
                .type = SHIM_MSG_REPLY,
                .error = error,
                .status = SHIM_STATUS_RUNNING,
                .pid = pid,
        };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = &r, .iov_len = sizeof(r) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (message)
                snprintf(r.message, sizeof(r.message), "%s", message);
        if (pass_fd >= 0) {
                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof(control.buf);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
        }
        (void) sendmsg(peer, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* ---- the joiner and the process (children; never return) --------------------------------------------- */

typedef struct Plan {
        const ShimExecPlan *h;
        const uint32_t *groups;
        const ShimExecRlimit *rlimits;
        struct bpf_prog_ progs[SHIM_EXEC_FILTERS_MAX];
        const char *cwd;
        char **args, **env;
} Plan;

static _Noreturn void child_fail(int report, int error, int status, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static _Noreturn void child_fail(int report, int error, int status, const char *fmt, ...) {
        ShimExecReport rep = { .type = SHIM_EXEC_REPORT_ERROR,
                               .error = error > 0 ? error : EIO,
                               .status = status };
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(rep.message, sizeof(rep.message), fmt, ap);
        va_end(ap);
        (void) send(report, &rep, sizeof(rep), MSG_NOSIGNAL);
        _exit(status);
}

/* Every count and offset bounded before use; strings are exactly 1 + n_args + n_env NUL-terminated. */
static int plan_parse(const void *map, size_t size, Plan *p) {
        const ShimExecPlan *h = map;
        const char *cur, *end;
        size_t need;

        if (size < sizeof(*h) || h->magic != SHIM_EXEC_PLAN_MAGIC || h->version != SHIM_EXEC_PLAN_VERSION ||
            h->size != size || h->n_groups > SHIM_EXEC_GROUPS_MAX || h->n_rlimits > SHIM_EXEC_RLIMITS_MAX ||
            h->n_filters > SHIM_EXEC_FILTERS_MAX || h->n_args == 0 || h->n_args > SHIM_EXEC_ARGS_MAX ||
            h->n_env > SHIM_EXEC_ENV_MAX)
                return -EBADMSG;
        need = sizeof(*h) + h->n_groups * sizeof(uint32_t) + h->n_rlimits * sizeof(ShimExecRlimit);
        for (uint32_t i = 0; i < h->n_filters; i++) {
                if (h->filter_len[i] == 0 || h->filter_len[i] > SHIM_EXEC_FILTER_LEN_MAX)
                        return -EBADMSG;
                need += h->filter_len[i] * sizeof(struct bpf_insn_);
        }
        if (need + h->strings_size != size || h->strings_size == 0)
                return -EBADMSG;
        cur = (const char *) map + sizeof(*h);
        p->h = h;
        p->groups = (const uint32_t *) cur;
        cur += h->n_groups * sizeof(uint32_t);
        p->rlimits = (const ShimExecRlimit *) cur;
        cur += h->n_rlimits * sizeof(ShimExecRlimit);
        for (uint32_t i = 0; i < h->n_filters; i++) {
                p->progs[i] = (struct bpf_prog_){ .len = (unsigned short) h->filter_len[i],
                                                  .filter = (struct bpf_insn_ *) cur };
                cur += h->filter_len[i] * sizeof(struct bpf_insn_);
        }
        end = (const char *) map + size;
        if (end[-1] != '\0')
                return -EBADMSG;
        p->args = calloc(h->n_args + 1, sizeof(char *));
        p->env = calloc(h->n_env + 1, sizeof(char *));
        if (!p->args || !p->env)
                return -ENOMEM;
        for (uint32_t i = 0; i < 1 + h->n_args + h->n_env; i++) {
                size_t l;
                if (cur >= end)
                        return -EBADMSG;
                l = strlen(cur);
                if (i == 0)
                        p->cwd = cur;
                else if (i <= h->n_args)
                        p->args[i - 1] = (char *) cur;
                else
                        p->env[i - 1 - h->n_args] = (char *) cur;
                cur += l + 1;
        }
        if (cur != end || p->cwd[0] != '/')
                return -EBADMSG;
        return 0;
}

static int openat2_fd(int dir_fd, const char *path, uint64_t flags, uint64_t resolve) {
        struct open_how_ how = { .flags = flags, .resolve = resolve };
        long fd = syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
        return fd < 0 ? -1 : (int) fd;
}

/* J: joins the init's cgroup in every hierarchy, from the host's view of /proc/<init>/cgroup. */
static int join_cgroups(pid_t init_pid, char *why, size_t why_size) {
        char path[64], buf[8192], file[4096];
        bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int) init_pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        (void) close(fd);
        if (n <= 0)
                return -EIO;
        buf[n] = 0;
        for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                char *ctl = strchr(line, ':'), *cg;
                if (!ctl || !(cg = strchr(ctl + 1, ':')))
                        continue;
                *cg++ = 0;
                ctl++;
                /* SECURITY: the path is the kernel's, but never walk out of the hierarchy. */
                if (cg[0] != '/' || strstr(cg, "/../") ||
                    (strlen(cg) >= 3 && !strcmp(cg + strlen(cg) - 3, "/..")))
                        return -EINVAL;
                if (!*ctl)
                        snprintf(file, sizeof(file), "/sys/fs/cgroup%s%s/cgroup.procs", v2 ? "" : "/unified",
                                 cg);
                else
                        snprintf(file, sizeof(file), "/sys/fs/cgroup/%s%s/cgroup.procs",
                                 !strncmp(ctl, "name=", 5) ? ctl + 5 : ctl, cg);
                fd = open(file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0 && errno == ENOENT)
                        continue; /* a hierarchy not mounted here: nothing to join */
                if (fd < 0 || write(fd, "0", 1) != 1) {
                        int e = errno ?: EIO;
                        snprintf(why, why_size, "%.200s", file);
                        (void) xclose(fd);
                        return -e;
                }
                (void) close(fd);
        }
        return 0;
}

static const struct {
        const char *name;
        int type;
} join_order[] = {
        /* The mount namespace last: until then /proc and /sys/fs/cgroup are the host's. */
        { "cgroup", CLONE_NEWCGROUP }, { "ipc", CLONE_NEWIPC }, { "uts", CLONE_NEWUTS },
        { "net", CLONE_NEWNET },       { "pid", CLONE_NEWPID }, { "mnt", CLONE_NEWNS },
};

static bool same_ns(int fd, const char *name) {
        char self[64];
        struct stat a, b;

        snprintf(self, sizeof(self), "/proc/self/ns/%s", name);
        return fstat(fd, &a) == 0 && stat(self, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static int status_for(int e) {
        return e == ENOENT || e == ENOTDIR || e == ELOOP || e == ENAMETOOLONG ? 127 : 126;
}

static void install_filters(const Plan *p, int report) {
        for (uint32_t i = 0; i < p->h->n_filters; i++)
                if (syscall(SYS_seccomp, SECCOMP_MODE_FILTER_OP, 0, &p->progs[i]) < 0)
                        child_fail(report, errno, 126, "Cannot install the seccomp filter: %m");
}

static void setup_tty(const ShimExecPlan *h, int report) {
        int root, master, slave, unlock = 0;
        struct statfs sfs;
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        ShimExecReport rep = { .type = SHIM_EXEC_REPORT_PTY };
        struct iovec iov = { .iov_base = &rep, .iov_len = sizeof(rep) };
        struct msghdr mh = { .msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };

        /* The container's own devpts instance, never a node the container could have put at /dev/ptmx. */
        root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        master = openat2_fd(root, "/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC,
                            RESOLVE_IN_ROOT_ | RESOLVE_NO_SYMLINKS_ | RESOLVE_NO_MAGICLINKS_);
        (void) xclose(root);
        if (master < 0 || fstatfs(master, &sfs) < 0 || sfs.f_type != DEVPTS_MAGIC)
                child_fail(report, errno ?: EPERM, 126, "Cannot open the container's /dev/pts/ptmx");
        if (ioctl(master, TIOCSPTLCK, &unlock) < 0 ||
            (slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY)) < 0)
                child_fail(report, errno, 126, "Cannot allocate a pty: %m");
        if (h->tty_rows > 0 && h->tty_columns > 0) {
                struct winsize ws = { .ws_row = h->tty_rows, .ws_col = h->tty_columns };
                (void) ioctl(master, TIOCSWINSZ, &ws);
        }
        if (ioctl(slave, TIOCSCTTY, 0) < 0)
                child_fail(report, errno, 126, "Cannot make the pty the controlling terminal: %m");
        for (int i = 0; i < 3; i++)
                if (dup2(slave, i) < 0)
                        child_fail(report, errno, 126, "Cannot attach the pty: %m");
        if (slave > 2)
                (void) close(slave);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &master, sizeof(int));
        if (sendmsg(report, &mh, MSG_NOSIGNAL) < 0)
                _exit(126);
        (void) close(master);
}

static void setup_stdio(int report, const int stdio[3]) {
        int tmp[3];

        for (int i = 0; i < 3; i++) {
                if (stdio[i] >= 0)
                        tmp[i] = fcntl(stdio[i], F_DUPFD_CLOEXEC, 3);
                else {
                        struct stat st;
                        int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                        tmp[i] = openat2_fd(
                                root, "/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_NOCTTY | O_CLOEXEC,
                                RESOLVE_IN_ROOT_ | RESOLVE_NO_SYMLINKS_ | RESOLVE_NO_MAGICLINKS_);
                        (void) xclose(root);
                        /* Only the real null device: the container's root could have put anything there. */
                        if (tmp[i] >= 0 &&
                            (fstat(tmp[i], &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)))
                                tmp[i] = xclose(tmp[i]);
                }
                if (tmp[i] < 0)
                        child_fail(report, errno ?: EBADF, 126, "Cannot set up fd %d of the process", i);
        }
        for (int i = 0; i < 3; i++)
                if (dup2(tmp[i], i) < 0)
                        child_fail(report, errno, 126, "Cannot set up fd %d of the process: %m", i);
}

static void set_identity(const Plan *p, int report) {
        const ShimExecPlan *h = p->h;
        struct cap_header_ hdr = { .version = CAP_VERSION_3 };
        struct cap_data_ data[2] = {
                { (uint32_t) h->cap_effective, (uint32_t) h->cap_permitted, (uint32_t) h->cap_inheritable },
                { (uint32_t) (h->cap_effective >> 32), (uint32_t) (h->cap_permitted >> 32),
                  (uint32_t) (h->cap_inheritable >> 32) },
        };
        gid_t groups[SHIM_EXEC_GROUPS_MAX];

        /* The engine's order (engine.c): seccomp first while still privileged unless no_new_privs, the
         * bounding set, the uid switch keeping the permitted set, the exact sets, ambient, no_new_privs,
         * seccomp. */
        if (!(h->flags & SHIM_EXEC_PLAN_NO_NEW_PRIVS))
                install_filters(p, report);
        for (int c = 0; c <= cap_last; c++)
                if (!(h->cap_bounding & (UINT64_C(1) << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 &&
                    errno != EINVAL)
                        child_fail(report, errno, 126, "Cannot drop capability %d from the bounding set: %m",
                                   c);
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                child_fail(report, errno, 126, "Cannot set PR_SET_KEEPCAPS: %m");
        for (uint32_t i = 0; i < h->n_groups; i++)
                groups[i] = p->groups[i];
        /* SECURITY: always, also to an empty list: none of the shim's (root's) groups may stay. */
        if (setgroups(h->n_groups, groups) < 0 || setresgid(h->gid, h->gid, h->gid) < 0 ||
            setresuid(h->uid, h->uid, h->uid) < 0)
                child_fail(report, errno, 126, "Cannot switch to uid %u gid %u: %m", h->uid, h->gid);
        if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0 || syscall(SYS_capset, &hdr, data) < 0)
                child_fail(report, errno, 126, "Cannot set the capabilities: %m");
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
                child_fail(report, errno, 126, "Cannot clear the ambient capabilities: %m");
        for (int c = 0; c <= 63; c++)
                if ((h->cap_ambient & (UINT64_C(1) << c)) &&
                    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
                        child_fail(report, errno, 126, "Cannot raise ambient capability %d: %m", c);
        if (h->flags & SHIM_EXEC_PLAN_NO_NEW_PRIVS) {
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                        child_fail(report, errno, 126, "Cannot set no_new_privs: %m");
                install_filters(p, report);
        }
}

static const char *env_get(char **env, const char *name) {
        size_t l = strlen(name);
        for (char **e = env; *e; e++)
                if (!strncmp(*e, name, l) && (*e)[l] == '=')
                        return *e + l + 1;
        return NULL;
}

/* PATH search as a shell does it, in the container's PATH. Returns only on failure. */
static _Noreturn void do_exec(const Plan *p, int report) {
        const char *file = p->args[0], *path;
        char buf[4096];
        int last = ENOENT;
        bool eacces = false;

        if (strchr(file, '/')) {
                execve(file, p->args, p->env);
                last = errno;
                child_fail(report, last, status_for(last), "Cannot execute '%s': %s", file, strerror(last));
        }
        path = env_get(p->env, "PATH") ?: DEFAULT_PATH;
        for (;;) {
                const char *colon = strchrnul(path, ':');
                size_t dl = (size_t) (colon - path);
                if (snprintf(buf, sizeof(buf), "%.*s%s%s", (int) dl, path, dl ? "/" : "", file) <
                    (int) sizeof(buf)) {
                        execve(buf, p->args, p->env);
                        if (errno == EACCES)
                                eacces = true;
                        else if (errno != ENOENT && errno != ENOTDIR) {
                                last = errno;
                                break;
                        }
                }
                if (!*colon)
                        break;
                path = colon + 1;
        }
        if (eacces && last == ENOENT)
                last = EACCES;
        child_fail(report, last, status_for(last), "Cannot execute '%s': %s", file,
                   last == ENOENT ? "No such file or directory in $PATH" : strerror(last));
}

static _Noreturn void process_main(const Plan *p, int report, const int stdio[3]) {
        const ShimExecPlan *h = p->h;
        int root, cwd;

        if (setsid() < 0)
                child_fail(report, errno, 126, "setsid failed: %m");
        if (h->flags & SHIM_EXEC_PLAN_TTY)
                setup_tty(h, report);
        else
                setup_stdio(report, stdio);
        /* SECURITY (CVE-2024-21626, CVE-2016-9962): from here only 0, 1, 2 and the report socket (O_CLOEXEC)
         * exist; the plan's mapping is not an fd. */
        if (report > 3)
                (void) syscall(SYS_close_range, 3U, (unsigned) report - 1, 0U);
        (void) syscall(SYS_close_range, (unsigned) report + 1, ~0U, 0U);

        /* The cwd: resolved inside the container's root, never through a magic link (setns() into the
         * mount namespace already put our root and cwd at its root). */
        root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        cwd = openat2_fd(root, p->cwd, O_PATH | O_DIRECTORY | O_CLOEXEC,
                         RESOLVE_IN_ROOT_ | RESOLVE_NO_MAGICLINKS_);
        if (cwd < 0 || fchdir(cwd) < 0)
                child_fail(report, errno, 126, "Cannot enter the working directory '%s': %m", p->cwd);
        (void) close(cwd);
        (void) close(root);

        umask((mode_t) h->umask);
        for (uint32_t i = 0; i < h->n_rlimits; i++) {
                struct rlimit rl = {
                        .rlim_cur = p->rlimits[i].soft == UINT64_MAX ? RLIM_INFINITY : p->rlimits[i].soft,
                        .rlim_max = p->rlimits[i].hard == UINT64_MAX ? RLIM_INFINITY : p->rlimits[i].hard,
                };
                if (setrlimit(p->rlimits[i].resource, &rl) < 0)
                        child_fail(report, errno, 126, "Cannot set rlimit %d: %m", p->rlimits[i].resource);
        }
        if (h->flags & SHIM_EXEC_PLAN_OOM_SCORE_ADJ) {
                char v[16];
                int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC | O_NOCTTY), l;
                l = snprintf(v, sizeof(v), "%d", h->oom_score_adj);
                if (fd < 0 || write(fd, v, (size_t) l) != l)
                        child_fail(report, errno, 126, "Cannot set oom_score_adj: %m");
                (void) close(fd);
        }
        set_identity(p, report);

        /* The process outlives the shim's death as the init does; signals as after a login. */
        (void) prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
        {
                struct sigaction sa = { .sa_handler = SIG_DFL };
                sigset_t none;
                sigemptyset(&sa.sa_mask);
                for (int sig = 1; sig < _NSIG; sig++)
                        if (sig != SIGKILL && sig != SIGSTOP)
                                (void) sigaction(sig, &sa, NULL);
                sigemptyset(&none);
                (void) sigprocmask(SIG_SETMASK, &none, NULL);
        }
        do_exec(p, report);
}

/* Closes every fd from 3 up but those in keep: none of the shim's own fds (state directory, sockets, log)
 * comes along into the namespaces. */
static void close_all_but(const int *keep, size_t n) {
        for (int fd = 3; fd < 1024; fd++) {
                bool k = false;
                for (size_t i = 0; i < n; i++)
                        k = k || keep[i] == fd;
                if (!k)
                        (void) close(fd);
        }
}

void shim_joiner_prepare(const int *keep, size_t n) {
        /* SECURITY (CVE-2016-9962): not dumpable while we hold anything of the host, so no process of the
         * container can ptrace us or open our /proc/<pid>/fd; P inherits it; execve() resets it. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                _exit(126);
        close_all_but(keep, n);
}

int shim_joiner_enter(pid_t init_pid, char *why, size_t why_size) {
        int ns[sizeof(join_order) / sizeof(join_order[0])];
        char where[256] = "";
        int r = 0;

        /* The init is our parent's child and not reaped: its pid cannot name another process. */
        for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
                char path[64];
                snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int) init_pid, join_order[i].name);
                ns[i] = open(path, O_RDONLY | O_CLOEXEC);
                if (ns[i] < 0 && r == 0) {
                        r = -errno;
                        snprintf(why, why_size, "Cannot open the container's %s namespace: %s",
                                 join_order[i].name, strerror(errno));
                }
        }
        if (r == 0) {
                r = join_cgroups(init_pid, where, sizeof(where));
                if (r < 0)
                        snprintf(why, why_size, "Cannot join the container's cgroup %s: %s", where,
                                 strerror(-r));
        }
        for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
                if (r == 0 && !same_ns(ns[i], join_order[i].name) && setns(ns[i], join_order[i].type) < 0) {
                        r = -errno;
                        snprintf(why, why_size, "Cannot join the container's %s namespace: %s",
                                 join_order[i].name, strerror(errno));
                }
                (void) xclose(ns[i]);
        }
        return r;
}

_Noreturn void shim_joiner_finish(int report, int plan_fd, const int stdio[3]) {
        struct stat st;
        void *map;
        Plan plan = {};
        int gate[2], r;
        pid_t pid;

        if (fstat(plan_fd, &st) < 0 || st.st_size <= 0 || st.st_size > SHIM_EXEC_PLAN_SIZE_MAX)
                child_fail(report, EBADMSG, 126, "Bad exec plan");
        map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, plan_fd, 0);
        if (map == MAP_FAILED)
                child_fail(report, errno, 126, "Cannot map the exec plan: %m");
        (void) close(plan_fd);
        r = plan_parse(map, (size_t) st.st_size, &plan);
        if (r < 0)
                child_fail(report, -r, 126, "Bad exec plan");

        /* The gate: P waits until its pid is in the report. Without it P could fail (or exec and exit)
         * and be reaped by the shim before the shim knew its pid: that reap matched no exec, so the
         * status was never written and the status fd stayed open (the requester waited forever). */
        if (pipe2(gate, O_CLOEXEC) < 0)
                child_fail(report, errno, 126, "Cannot create the process in the container: %m");
        /* P: our sibling (the shim's child), born in the container's pid namespace. */
        pid = (pid_t) syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, NULL);
        if (pid < 0)
                child_fail(report, errno, 126, "Cannot create the process in the container: %m");
        if (pid == 0) {
                char go;
                ssize_t n;

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
                (void) close(gate[1]);
                do
                        n = read(gate[0], &go, 1);
                while (n < 0 && errno == EINTR);
                /* No byte: J died before reporting our pid; the shim ends the exec as never started. */
                if (n != 1)
                        _exit(126);
                (void) close(gate[0]);
                process_main(&plan, report, stdio);
        }
        (void) close(gate[0]);
        ShimExecReport rep = { .type = SHIM_EXEC_REPORT_PID, .pid = pid };
        if (send(report, &rep, sizeof(rep), MSG_NOSIGNAL) == (ssize_t) sizeof(rep))
                (void) write(gate[1], "", 1);
        _exit(0);
}

_Noreturn void shim_joiner_fail(int report, int error, const char *why) {
        child_fail(report, error, 126, "%s", why);
}

/* J, forked for one exec: the init's cgroup and namespaces (the mount namespace last), then the plan. */
static _Noreturn void joiner_main(int report, int plan_fd, pid_t init_pid, const int stdio[3]) {
        int keep[] = { report, plan_fd, stdio[0], stdio[1], stdio[2] };
        char why[512] = "";
        int r;

        shim_joiner_prepare(keep, sizeof(keep) / sizeof(keep[0]));
        r = shim_joiner_enter(init_pid, why, sizeof(why));
        if (r < 0)
                child_fail(report, -r, 126, "%s", why);
        shim_joiner_finish(report, plan_fd, stdio);
}

/* ---- the shim's side ------------------------------------------------------------------------------------
 */

/* The highest capability the kernel knows, as the engine reads it for the init (caps.c): the bounding set
 * has nothing above it to drop. Read by the shim in the host's /proc, once, before any joiner is forked;
 * 63 (every bit of the plan's masks) when it cannot be read. */
static void read_cap_last(void) {
        char buf[16] = "";
        int fd, v = 0;
        ssize_t n;

        if (cap_last >= 0)
                return;
        cap_last = 63;
        fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        n = read(fd, buf, sizeof(buf) - 1);
        (void) close(fd);
        if (n <= 0)
                return;
        for (ssize_t i = 0; i < n && buf[i] != '\n'; i++) {
                if (buf[i] < '0' || buf[i] > '9' || v > 63)
                        return;
                v = v * 10 + (buf[i] - '0');
        }
        if (buf[0] >= '0' && buf[0] <= '9' && v <= 63)
                cap_last = v;
}

static bool exe_is_sealed(void) {
        int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC), seals;

        if (fd < 0)
                return false;
        seals = fcntl(fd, F_GET_SEALS);
        (void) close(fd);
        return seals >= 0 && (seals & REQUIRED_SEALS) == REQUIRED_SEALS;
}

static void exec_free(Exec *e) {
        e->report = xclose(e->report);
        e->peer = xclose(e->peer);
        e->status_fd = xclose(e->status_fd);
        e->pty = xclose(e->pty);
        e->used = false;
}

void shim_exec_request(int peer_fd, const ShimRequest *q, int *fds, size_t n_fds, pid_t init_pid,
                       bool running) {
        int stdio[3] = { -1, -1, -1 }, status_fd = -1, sp[2];
        size_t k = 1;
        Exec *e = NULL;
        pid_t j;

        if ((q->flags & ~SHIM_EXEC_FDS_KNOWN) || n_fds != 1 + (size_t) __builtin_popcount(q->flags)) {
                reply(peer_fd, EINVAL, "bad exec request", 0, -1);
                goto out;
        }
        if (!running) {
                reply(peer_fd, ESRCH, "the container is not running", 0, -1);
                goto out;
        }
        read_cap_last();
        /* SECURITY (CVE-2019-5736): P's /proc/self/exe is ours until its execve; a shim started from a
         * file (by an older supervisor) must not run anything in the container. */
        if (!exe_is_sealed()) {
                reply(peer_fd, EPERM, "this container's shim does not run from a sealed executable", 0, -1);
                goto out;
        }
        for (size_t i = 0; i < SHIM_EXECS_MAX && !e; i++)
                if (!execs[i].used)
                        e = &execs[i];
        if (!e) {
                reply(peer_fd, EBUSY, "too many processes being exec'd in this container", 0, -1);
                goto out;
        }
        for (int i = 0; i < 3; i++)
                if (q->flags & (SHIM_EXEC_FD_STDIN << i))
                        stdio[i] = fds[k++];
        if (q->flags & SHIM_EXEC_FD_STATUS)
                status_fd = fds[k++];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
                reply(peer_fd, errno, "socketpair failed", 0, -1);
                goto out;
        }
        /* The spare joiner, already in the container (shim-spare.c), or one forked for this exec. */
        if (!shim_spare_take(q->flags, sp[1], fds[0], stdio)) {
                j = fork();
                if (j < 0) {
                        reply(peer_fd, errno, "fork failed", 0, -1);
                        (void) close(sp[0]);
                        (void) close(sp[1]);
                        goto out;
                }
                if (j == 0) {
                        (void) close(sp[0]);
                        joiner_main(sp[1], fds[0], init_pid, stdio);
                }
        }
        (void) close(sp[1]);
        *e = (Exec){ .used = true,
                     .report = sp[0],
                     .peer = fcntl(peer_fd, F_DUPFD_CLOEXEC, 3),
                     .status_fd = status_fd,
                     .pty = -1 };
        (void) fcntl(e->report, F_SETFL, O_NONBLOCK);
        /* The status fd is the caller's: a full pipe must never block us. */
        if (e->status_fd >= 0)
                (void) fcntl(e->status_fd, F_SETFL, fcntl(e->status_fd, F_GETFL) | O_NONBLOCK);
        /* The plan and stdio went to the joiner; the status fd is the entry's now. */
        for (size_t i = 0; i < n_fds; i++)
                if (fds[i] != status_fd)
                        fds[i] = xclose(fds[i]);
        /* The next exec's joiner, joining now while the init runs (its pid cannot be reused yet). */
        if (!finishing)
                shim_spare_ensure(init_pid);
        return;
out:
        shim_close_fds(fds, n_fds);
}

static void exec_write_status(Exec *e, int code, uint32_t reason) {
        char line[SHIM_EXEC_STATUS_MAX];
        int l;

        if (e->status_fd < 0)
                return;
        l = snprintf(line, sizeof(line), "%d %s\n", code, shim_reason_to_string(reason));
        (void) write(e->status_fd, line, (size_t) l);
        e->status_fd = xclose(e->status_fd);
}

/* Reads what the joiner and the process reported; at the end of the stream, answers the requester. */
static void exec_read_report(Exec *e) {
        for (;;) {
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(int))];
                } control;
                ShimExecReport rep;
                struct iovec iov = { .iov_base = &rep, .iov_len = sizeof(rep) };
                struct msghdr mh = { .msg_iov = &iov,
                                     .msg_iovlen = 1,
                                     .msg_control = control.buf,
                                     .msg_controllen = sizeof(control.buf) };
                ssize_t n = recvmsg(e->report, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                int got = -1;

                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
                                memcpy(&got, CMSG_DATA(c), sizeof(int));
                if (n <= 0)
                        break;
                if (n != (ssize_t) sizeof(rep)) {
                        (void) xclose(got);
                        continue;
                }
                rep.message[sizeof(rep.message) - 1] = 0;
                if (rep.type == SHIM_EXEC_REPORT_PID && rep.pid > 0 && e->pid == 0)
                        e->pid = rep.pid;
                else if (rep.type == SHIM_EXEC_REPORT_PTY && got >= 0 && e->pty < 0) {
                        e->pty = got;
                        got = -1;
                } else if (rep.type == SHIM_EXEC_REPORT_ERROR && e->error == 0) {
                        e->error = rep.error > 0 ? rep.error : EIO;
                        e->exec_status = rep.status == 126 || rep.status == 127 ? rep.status : 126;
                        memcpy(e->message, rep.message, sizeof(e->message));
                }
                (void) xclose(got);
        }
        /* End of the report: execve() succeeded (the socket was O_CLOEXEC), or a failure was reported. */
        e->report = xclose(e->report);
        if (e->peer >= 0) {
                if (e->error == 0 && e->pid == 0) {
                        e->error = EIO;
                        e->exec_status = 126;
                        snprintf(e->message, sizeof(e->message), "the process could not be started");
                }
                reply(e->peer, e->error, e->error ? e->message : NULL, e->pid, e->error ? -1 : e->pty);
                e->peer = xclose(e->peer);
        }
        e->pty = xclose(e->pty);
        if (e->pid == 0) {
                /* Never started: its status is the failure's. */
                exec_write_status(e, e->exec_status, SHIM_REASON_EXEC_FAILED);
                exec_free(e);
        } else if (e->reaped)
                exec_free(e);
}

bool shim_exec_reaped(pid_t pid, int status) {
        if (shim_spare_reaped(pid))
                return false;
        /* A pid or a failure may still sit in a report we did not read yet. */
        for (size_t i = 0; i < SHIM_EXECS_MAX; i++)
                if (execs[i].used && execs[i].report >= 0)
                        exec_read_report(&execs[i]);
        for (size_t i = 0; i < SHIM_EXECS_MAX; i++) {
                Exec *e = &execs[i];
                if (!e->used || e->pid != pid || e->reaped)
                        continue;
                e->reaped = true;
                if (e->error)
                        exec_write_status(e, e->exec_status, SHIM_REASON_EXEC_FAILED);
                else if (WIFSIGNALED(status))
                        exec_write_status(e, 128 + WTERMSIG(status), SHIM_REASON_SIGNAL);
                else
                        exec_write_status(e, WEXITSTATUS(status), SHIM_REASON_EXITED);
                if (e->report < 0)
                        exec_free(e);
                return true;
        }
        return false;
}

int shim_exec_signal(pid_t pid, int sig) {
        if (pid <= 0 || sig <= 0 || sig >= _NSIG)
                return EINVAL;
        /* Our child and not reaped: the pid is still this process's, never a recycled one. */
        for (size_t i = 0; i < SHIM_EXECS_MAX; i++)
                if (execs[i].used && execs[i].pid == pid && !execs[i].reaped)
                        return kill(pid, sig) < 0 ? errno : 0;
        return ESRCH;
}

/* ---- attach ----------------------------------------------------------------------------------------------
 */

static void attach_drop(Attach *a) {
        a->fd = xclose(a->fd);
        a->pty = xclose(a->pty);
}

void shim_attach_request(int peer_fd, int pty, bool running) {
        Attach *a = NULL;
        int sp[2];

        if (!running) {
                reply(peer_fd, ESRCH, "the container is not running", 0, -1);
                return;
        }
        if (pty < 0 || !isatty(pty)) {
                reply(peer_fd, ENOTTY, "the container has no terminal to attach to (run it with -d -t)", 0,
                      -1);
                return;
        }
        for (size_t i = 0; i < SHIM_ATTACH_MAX && !a; i++)
                if (attaches[i].fd < 0)
                        a = &attaches[i];
        if (!a) {
                reply(peer_fd, EBUSY, "too many clients attached", 0, -1);
                return;
        }
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp) < 0) {
                reply(peer_fd, errno, "socketpair failed", 0, -1);
                return;
        }
        a->fd = sp[0];
        a->pty = fcntl(pty, F_DUPFD_CLOEXEC, 3);
        /* The client's end blocks as any terminal does. */
        (void) fcntl(sp[1], F_SETFL, fcntl(sp[1], F_GETFL) & ~O_NONBLOCK);
        reply(peer_fd, 0, NULL, 0, sp[1]);
        (void) close(sp[1]);
}

void shim_attach_output(const void *buf, size_t n) {
        for (size_t i = 0; i < SHIM_ATTACH_MAX; i++) {
                Attach *a = &attaches[i];
                if (a->fd < 0)
                        continue;
                /* A client that does not keep up loses output (the log has it), never stalls the shim. */
                if (send(a->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
                    errno != EINTR)
                        attach_drop(a);
        }
}

static void attach_input(Attach *a) {
        char buf[4096];
        ssize_t n = read(a->fd, buf, sizeof(buf));

        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n <= 0) {
                /* The client detached: the container goes on. */
                attach_drop(a);
                return;
        }
        for (ssize_t off = 0; off < n;) {
                ssize_t k = write(a->pty, buf + off, (size_t) (n - off));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return;
                off += k;
        }
}

/* ---- the loop's part -------------------------------------------------------------------------------------
 */

size_t shim_exec_poll_fill(struct pollfd *p) {
        size_t n = 0;

        for (size_t i = 0; i < SHIM_EXECS_MAX; i++)
                if (execs[i].used && execs[i].report >= 0)
                        p[n++] = (struct pollfd){ .fd = execs[i].report, .events = POLLIN };
        for (size_t i = 0; i < SHIM_ATTACH_MAX; i++)
                if (attaches[i].fd >= 0)
                        p[n++] = (struct pollfd){ .fd = attaches[i].fd, .events = POLLIN };
        return n;
}

void shim_exec_poll_dispatch(const struct pollfd *p, size_t n) {
        for (size_t k = 0; k < n; k++) {
                if (!p[k].revents)
                        continue;
                for (size_t i = 0; i < SHIM_EXECS_MAX; i++)
                        if (execs[i].used && execs[i].report == p[k].fd) {
                                exec_read_report(&execs[i]);
                                break;
                        }
                for (size_t i = 0; i < SHIM_ATTACH_MAX; i++)
                        if (attaches[i].fd >= 0 && attaches[i].fd == p[k].fd) {
                                attach_input(&attaches[i]);
                                break;
                        }
        }
}

void shim_exec_finish(void) {
        finishing = true;
        shim_spare_stop();
        for (size_t i = 0; i < SHIM_ATTACH_MAX; i++)
                attach_drop(&attaches[i]);
        for (size_t i = 0; i < SHIM_EXECS_MAX; i++) {
                Exec *e = &execs[i];
                int status;

                if (!e->used)
                        continue;
                if (e->report >= 0) {
                        /* Its writers are dying with the pid namespace: the end of stream is near. */
                        (void) fcntl(e->report, F_SETFL, 0);
                        exec_read_report(e);
                        if (!e->used)
                                continue;
                }
                if (e->pid > 0 && !e->reaped) {
                        (void) kill(e->pid, SIGKILL);
                        if (waitpid(e->pid, &status, 0) == e->pid)
                                (void) shim_exec_reaped(e->pid, status);
                }
                if (e->used)
                        exec_free(e);
        }
}
