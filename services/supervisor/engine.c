/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "caps.h"
#include "cgroup.h"
#include "console.h"
#include "devices.h"
#include "engine.h"
#include "exe-seal.h"
#include "fs-in-root.h"
#include "fs-util.h"
#include "mounts.h"
#include "namespaces.h"
#include "process.h"
#include "seccomp.h"
#include "spec.h"
#include "sysctl.h"

/* Container creation, as a straight list of named steps. The caller (parent) and the container's init
 * (child, cloned into its new namespaces) meet at numbered sync points over a SOCK_SEQPACKET pair; each
 * point is one function per side, and each is commented on both sides:
 *
 *   SYNC 1  parent → child   "cgroup joined": the parent moved the init into its cgroup (and, with the
 *                            future user namespace, wrote its uid/gid maps). Until then the child builds
 *                            its mount tree in parallel (a cgroup v1 attach waits for an RCU grace
 *                            period, ~10 ms here); after it, it unshares its cgroup namespace, mounts the
 *                            spec's "cgroup" entries and goes on.
 *   SYNC 2  child → parent   "ready": the rootfs is pivoted, the process's identity, capabilities and
 *                            seccomp filter are in place, every fd but stdio and the three sync fds is
 *                            closed; carries the pty master with terminal. Or an error record instead.
 *   START   caller → child   one byte on start_fd: execve. EOF: exit.
 *   EXEC    child → caller   exec_err_fd: EOF when execve succeeded (O_CLOEXEC), else a record.
 */

typedef enum SyncPoint {
        SYNC_CGROUP_JOINED = 1,
        SYNC_READY = 2,
        SYNC_ERROR = 99,
} SyncPoint;

typedef struct SyncMessage {
        int32_t point;
        int32_t error;
        char message[BERTH_ERROR_MESSAGE_MAX];
} SyncMessage;

typedef struct EngineChild {
        const Spec *spec;
        const SeccompPrograms *seccomp;
        const EngineIO *io;
        int sync_fd;     /* child's end */
        int start_fd;    /* read end */
        int exec_err_fd; /* write end */
} EngineChild;

static int sync_send(int fd, SyncPoint point, const BerthError *e, int pass_fd) {
        SyncMessage m = { .point = point };
        struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (e) {
                m.error = e->error;
                memcpy(m.message, e->message, sizeof(m.message));
                m.message[sizeof(m.message) - 1] = '\0';
        }
        if (pass_fd >= 0) {
                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof(control.buf);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
        }
        for (;;) {
                ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
                if (n >= 0)
                        return n == (ssize_t) sizeof(m) ? 0 : -EIO;
                if (errno != EINTR)
                        return negative_errno();
        }
}

/* Receives one message; 0 on EOF (the peer died), 1 with *m filled. */
static int sync_recv(int fd, SyncMessage *m, int *ret_fd) {
        struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct msghdr mh = { .msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        ssize_t n;

        if (ret_fd)
                *ret_fd = -EBADF;
        do
                n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                        int got;
                        memcpy(&got, CMSG_DATA(c), sizeof(int));
                        if (ret_fd && *ret_fd < 0)
                                *ret_fd = got;
                        else
                                safe_close(got);
                }
        if (n == 0)
                return 0;
        if (n != (ssize_t) sizeof(*m) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
                if (ret_fd)
                        *ret_fd = safe_close(*ret_fd);
                return -EBADMSG;
        }
        m->message[sizeof(m->message) - 1] = '\0';
        return 1;
}

/* ───────────────────────── child side ───────────────────────── */

_noreturn_ static void child_fail(const EngineChild *c, const BerthError *e) {
        (void) sync_send(c->sync_fd, SYNC_ERROR, e, -EBADF);
        _exit(1);
}

/* SYNC 1 (child): wait until the parent has put us into the container's cgroup. */
static int child_sync_cgroup_joined(const EngineChild *c, BerthError *err) {
        SyncMessage m;
        int r = sync_recv(c->sync_fd, &m, NULL);
        if (r <= 0 || m.point != SYNC_CGROUP_JOINED)
                return berth_error_set(err, r < 0 ? -r : EPIPE, "Parent went away before sync point 1");
        return 0;
}

/* SYNC 2 (child): everything is in place; pass the pty master with terminal. */
static int child_sync_ready(const EngineChild *c, int pty_master, BerthError *err) {
        int r = sync_send(c->sync_fd, SYNC_READY, NULL, pty_master);
        if (r < 0)
                return berth_error_setm(err, -r, "Cannot reach the parent at sync point 2");
        return 0;
}

/* Waits for START: returns only when the caller wrote a byte; EOF means "do not start": exit. */
static void child_wait_start(const EngineChild *c) {
        char b;
        ssize_t n;

        do
                n = read(c->start_fd, &b, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1)
                _exit(0);
}

static int child_setup_terminal(int *ret_master, BerthError *err) {
        _cleanup_close_ int master = -EBADF;
        int unlock = 0, slave, r;

        /* /dev/ptmx is our symlink to pts/ptmx: the container's own devpts instance, so the pty
         * belongs to the container and not to the host's /dev/pts. */
        master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0)
                return berth_error_setm(err, errno, "Cannot open /dev/ptmx in the container");
        if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
                return berth_error_setm(err, errno, "Cannot unlock the pty");
        slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
        if (slave < 0)
                return berth_error_setm(err, errno, "Cannot open the pty's peer");
        if (ioctl(slave, TIOCSCTTY, 0) < 0) {
                safe_close(slave);
                return berth_error_setm(err, errno, "Cannot make the pty the controlling terminal");
        }
        r = console_bind(slave, err);
        if (r < 0) {
                safe_close(slave);
                return r;
        }
        for (int i = 0; i < 3; i++)
                if (dup2(slave, i) < 0) {
                        safe_close(slave);
                        return berth_error_setm(err, errno, "Cannot attach the pty to fd %d", i);
                }
        if (slave > 2)
                safe_close(slave);
        *ret_master = TAKE_FD(master);
        return 0;
}

static int child_setup_stdio(const EngineIO *io, BerthError *err) {
        int tmp[3] = { -EBADF, -EBADF, -EBADF };

        /* Move every source out of the way first, so that one of them being 0..2 already cannot be
         * clobbered by another's dup2. -1 is the container's own /dev/null, never a host fd. */
        for (int i = 0; i < 3; i++) {
                if (io->stdio[i] >= 0)
                        tmp[i] = fcntl(io->stdio[i], F_DUPFD_CLOEXEC, 3);
                else
                        tmp[i] = openat2_fd(AT_FDCWD, "/dev/null",
                                            (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC | O_NOCTTY,
                                            RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
                if (tmp[i] < 0)
                        return berth_error_setm(err, tmp[i] == -1 ? errno : -tmp[i],
                                                "Cannot prepare fd %d of the container", i);
        }
        for (int i = 0; i < 3; i++)
                if (dup2(tmp[i], i) < 0)
                        return berth_error_setm(err, errno, "Cannot set up fd %d of the container", i);
        return 0; /* tmp[] are closed with every other fd by process_close_fds() */
}

/* The container's init, from clone() to execve(). Never returns. */
_noreturn_ static void child_main(const EngineChild *c) {
        const Spec *spec = c->spec;
        BerthError e = {};
        int root_fd = -EBADF, pty_master = -EBADF, r;

        /* SECURITY (CVE-2016-9962): not dumpable while we hold anything of the host, so no process of
         * the container can ptrace us or open our /proc/<pid>/fd; execve() resets it. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                _exit(1);

        /* [user namespace slot] With CLONE_NEWUSER, the child would wait for SYNC 1 here instead (the
         * parent writes uid_map/gid_map first), then setresuid(0)/setresgid(0) before any mount:
         * nothing below changes. */

        if ((r = namespaces_join(spec, &e)) < 0 || (r = namespaces_setup_uts(spec, &e)) < 0 ||
            (r = namespaces_setup_loopback(spec, &e)) < 0)
                child_fail(c, &e);

        /* Root file system, while the parent attaches us to the cgroup: binds and mounts inside the
         * root, /dev, pivot, sysctls (before /proc/sys turns read-only), masked and read-only paths.
         * Nothing here runs code of the image or allocates much memory. */
        if ((r = rootfs_prepare(spec, &root_fd, &e)) < 0 ||
            (r = mounts_apply(root_fd, spec, false, &e)) < 0 || (r = dev_setup(root_fd, spec, &e)) < 0 ||
            (r = rootfs_pivot(root_fd, &e)) < 0)
                child_fail(c, &e);
        /* From here on, "/" is the container's; root_fd stays valid as the same directory. */
        if ((r = sysctls_apply(spec, &e)) < 0 || (r = paths_mask(spec->masked_paths, &e)) < 0 ||
            (r = paths_readonly(spec->readonly_paths, &e)) < 0)
                child_fail(c, &e);

        /* SYNC 1 (child side): see child_sync_cgroup_joined(). */
        if (child_sync_cgroup_joined(c, &e) < 0)
                _exit(1);
        if ((r = namespaces_unshare_cgroup(spec, &e)) < 0 || (r = mounts_apply(root_fd, spec, true, &e)) < 0)
                child_fail(c, &e);
        root_fd = safe_close(root_fd);

        /* stdio: a new session always (the container must not reach a terminal it was handed as its
         * controlling one), then the pty or the given fds. */
        if (setsid() < 0) {
                berth_error_setm(&e, errno, "setsid failed");
                child_fail(c, &e);
        }
        if (spec->terminal || c->io->terminal)
                r = child_setup_terminal(&pty_master, &e);
        else
                r = child_setup_stdio(c->io, &e);
        if (r < 0)
                child_fail(c, &e);

        if ((r = rootfs_finish_readonly(spec, &e)) < 0 || (r = process_set_cwd(spec, &e)) < 0)
                child_fail(c, &e);
        umask(spec->umask);
        if ((r = process_set_rlimits(spec, &e)) < 0 || (r = process_set_oom_score_adj(spec, &e)) < 0)
                child_fail(c, &e);

        /* SECURITY (CVE-2024-21626): from here only 0, 1, 2 and the sync fds (all O_CLOEXEC) exist. */
        {
                int keep[] = { c->sync_fd, c->start_fd, c->exec_err_fd, pty_master };
                if ((r = process_close_fds(keep, pty_master >= 0 ? 4 : 3, &e)) < 0)
                        child_fail(c, &e);
        }

        /* Without no_new_privs the kernel wants CAP_SYS_ADMIN to install a filter: do it while we are
         * still fully privileged. The profile allows everything the steps below call. */
        if (!spec->no_new_privileges && (r = seccomp_install(c->seccomp, &e)) < 0)
                child_fail(c, &e);
        if ((r = caps_drop_bounding(&spec->caps, &e)) < 0 || (r = process_set_user(spec, &e)) < 0 ||
            (r = caps_apply(&spec->caps, &e)) < 0)
                child_fail(c, &e);
        if (spec->no_new_privileges) {
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                        berth_error_setm(&e, errno, "Cannot set no_new_privs");
                        child_fail(c, &e);
                }
                if ((r = seccomp_install(c->seccomp, &e)) < 0)
                        child_fail(c, &e);
        }

        /* SYNC 2 (child side): see child_sync_ready(). */
        if (child_sync_ready(c, pty_master, &e) < 0)
                _exit(1);
        pty_master = safe_close(pty_master);
        safe_close(c->sync_fd);

        child_wait_start(c);

        /* The init outlives its creator (the shim becomes its parent by exec): no death signal. */
        (void) prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
        /* A daemon's signal state survives clone() and execve() (sd-event blocks the signals it
         * handles; SIGPIPE is often ignored): the container's process starts with every signal
         * unblocked and at its default action, as after a login. */
        process_reset_signals();

        int status = 127;
        (void) process_exec(spec, &status, &e);
        (void) signal(SIGPIPE, SIG_IGN); /* the reader may be gone: still exit with 127/126 */
        EngineExecError x = { .error = e.error, .status = status };
        memcpy(x.message, e.message, sizeof(x.message));
        x.message[sizeof(x.message) - 1] = '\0';
        (void) loop_write(c->exec_err_fd, &x, sizeof(x));
        _exit(status);
}

/* ───────────────────────── parent side ───────────────────────── */

/* The child reports its own failure before it exits: when a step of ours fails because the child is
 * gone, its message is the one worth returning. */
static int parent_take_child_error(int sync_fd, BerthError *err) {
        SyncMessage m;
        struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n = recvmsg(sync_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

        if (n != (ssize_t) sizeof(m) || m.point != SYNC_ERROR)
                return 0;
        m.message[sizeof(m.message) - 1] = '\0';
        return berth_error_set(err, m.error > 0 ? m.error : EIO, "%s", m.message);
}

/* SYNC 1 (parent): move the init into its cgroup, record where OOM kills show, then let it go on. The
 * child is meanwhile building its mount tree (see the child's side). */
static int parent_sync_cgroup_joined(int sync_fd, int state_dir_fd, Cgroup *cg, const Spec *spec, pid_t pid,
                                     BerthError *err) {
        int r;

        if (cg) {
                r = cg->ops->enter(cg, spec, pid, err);
                if (r < 0) {
                        (void) parent_take_child_error(sync_fd, err);
                        return r;
                }
                if (state_dir_fd >= 0 && cg->oom_file[0]) {
                        char line[PATH_MAX + 1];
                        int n = snprintf(line, sizeof(line), "%s\n", cg->oom_file);
                        /* Runtime state (tmpfs under /run/berth), read after the container exits:
                         * no fsync, one write. */
                        _cleanup_close_ int fd =
                                openat(state_dir_fd, CGROUP_OOM_FILE_NAME,
                                       O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
                        if (fd < 0)
                                return berth_error_setm(err, errno, "Cannot record the cgroup's OOM file");
                        r = loop_write(fd, line, (size_t) n);
                        if (r < 0)
                                return berth_error_setm(err, -r, "Cannot record the cgroup's OOM file");
                }
        }
        r = sync_send(sync_fd, SYNC_CGROUP_JOINED, NULL, -EBADF);
        if (r < 0) {
                r = berth_error_setm(err, -r, "Container init died before sync point 1");
                (void) parent_take_child_error(sync_fd, err);
                return r;
        }
        return 0;
}

/* SYNC 2 (parent): wait for "ready" (with the pty master) or the child's error record. */
static int parent_sync_ready(int sync_fd, int *ret_pty, BerthError *err) {
        SyncMessage m;
        int r = sync_recv(sync_fd, &m, ret_pty);

        if (r < 0)
                return berth_error_setm(err, -r, "Bad message from the container init");
        if (r == 0)
                return berth_error_set(err, EPIPE, "Container init died during setup");
        if (m.point == SYNC_ERROR)
                return berth_error_set(err, m.error > 0 ? m.error : EIO, "%s", m.message);
        if (m.point != SYNC_READY)
                return berth_error_set(err, EPROTO, "Unexpected sync point %d from the container init",
                                       m.point);
        /* The child closes its end right after "ready": wait for that EOF, so that a "created"
         * container holds exactly stdio, start_fd and exec_err_fd. */
        r = sync_recv(sync_fd, &m, NULL);
        if (r != 0)
                return berth_error_set(err, EPROTO,
                                       "Unexpected message from the container init after sync point 2");
        return 0;
}

static pid_t clone_init(unsigned long flags) {
        /* A fork() with namespace flags: the child runs on a copy of our stack, as after fork(). Like
         * crun's, the child must not use glibc's thread-id cache (raise(), abort(), pthread_*). */
        return (pid_t) syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

static void kill_and_reap(pid_t pid) {
        if (pid <= 0)
                return;
        (void) kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

int engine_create(int state_dir_fd, JsonNode *spec_json, const EngineIO *io, EngineContainer *ret,
                  BerthError *err) {
        _cleanup_close_ int sync_parent = -EBADF, sync_child = -EBADF, start_r = -EBADF, start_w = -EBADF,
                            exec_r = -EBADF, exec_w = -EBADF, pty = -EBADF;
        SeccompPrograms seccomp = {};
        Spec spec = {};
        Cgroup *cg = NULL;
        pid_t pid = -1;
        int fds[2], r;

        static const EngineIO no_io = { .stdio = { -1, -1, -1 } };

        *ret = (EngineContainer){
                .init_pid = -1, .start_fd = -EBADF, .exec_err_fd = -EBADF, .pty_master = -EBADF
        };
        if (!io)
                io = &no_io; /* all three on the container's /dev/null */

        r = spec_parse(spec_json, &spec, err);
        if (r < 0)
                goto out;
        if (!exe_is_sealed()) {
                r = berth_error_set(err, EPERM,
                                    "Refusing to create a container from an unsealed executable (call "
                                    "exe_seal_reexec() first: CVE-2019-5736)");
                goto out;
        }
        r = seccomp_build(&spec, &seccomp, err);
        if (r < 0)
                goto out;
        r = mounts_clone_bind_sources(&spec, err);
        if (r < 0)
                goto out;

        CgroupLayout layout;
        r = cgroup_detect_layout(&layout); /* cached for the child, which mounts "cgroup" after its pivot */
        if (r < 0) {
                r = berth_error_setm(err, -r, "Cannot detect the cgroup layout");
                goto out;
        }
        if (layout != CGROUP_LAYOUT_V2 && (r = cgroup_prepare_mounts()) < 0) {
                r = berth_error_setm(err, -r, "Cannot list the cgroup hierarchies");
                goto out;
        }
        r = cgroup_new(&spec, &cg, err);
        if (r < 0)
                goto out;
        if (cg && (r = cg->ops->create(cg, &spec, err)) < 0)
                goto out_cgroup;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0) {
                r = berth_error_setm(err, errno, "socketpair failed");
                goto out_cgroup;
        }
        sync_parent = fds[0];
        sync_child = fds[1];
        if (pipe2(fds, O_CLOEXEC) < 0) {
                r = berth_error_setm(err, errno, "pipe2 failed");
                goto out_cgroup;
        }
        start_r = fds[0];
        start_w = fds[1];
        if (pipe2(fds, O_CLOEXEC) < 0) {
                r = berth_error_setm(err, errno, "pipe2 failed");
                goto out_cgroup;
        }
        exec_r = fds[0];
        exec_w = fds[1];

        pid = clone_init(namespaces_clone_flags(&spec));
        if (pid < 0) {
                r = berth_error_setm(err, errno, "Cannot clone the container init");
                goto out_cgroup;
        }
        if (pid == 0) {
                EngineChild c = {
                        .spec = &spec,
                        .seccomp = &seccomp,
                        .io = io,
                        .sync_fd = sync_child,
                        .start_fd = start_r,
                        .exec_err_fd = exec_w,
                };
                child_main(&c);
        }
        sync_child = safe_close(sync_child);
        start_r = safe_close(start_r);
        exec_w = safe_close(exec_w);

        /* SYNC 1 (parent side): see parent_sync_cgroup_joined(). */
        r = parent_sync_cgroup_joined(sync_parent, state_dir_fd, cg, &spec, pid, err);
        if (r < 0)
                goto out_child;
        /* SYNC 2 (parent side): see parent_sync_ready(). */
        r = parent_sync_ready(sync_parent, &pty, err);
        if (r < 0)
                goto out_child;

        *ret = (EngineContainer){
                .init_pid = pid,
                .start_fd = TAKE_FD(start_w),
                .exec_err_fd = TAKE_FD(exec_r),
                .pty_master = TAKE_FD(pty),
        };
        r = 0;
        goto out;

out_child:
        kill_and_reap(pid);
out_cgroup:
        if (cg && cg->created)
                (void) cg->ops->destroy(cg);
        if (cg && state_dir_fd >= 0)
                (void) unlinkat(state_dir_fd, CGROUP_OOM_FILE_NAME, 0);
out:
        cgroup_free(cg);
        seccomp_programs_done(&seccomp);
        spec_done(&spec);
        return r;
}

int engine_cgroup_remove(JsonNode *spec_json, BerthError *err) {
        Spec spec = {};
        Cgroup *cg = NULL;
        int r;

        r = spec_parse(spec_json, &spec, err);
        if (r >= 0)
                r = cgroup_new(&spec, &cg, err);
        if (r >= 0 && cg) {
                r = cg->ops->destroy(cg);
                if (r < 0)
                        berth_error_setm(err, -r, "Cannot remove the container's cgroup");
        }
        cgroup_free(cg);
        spec_done(&spec);
        return r < 0 ? r : 0;
}

int engine_oom_kill_count(int state_dir_fd, uint64_t *ret) {
        return cgroup_oom_kill_count_at(state_dir_fd, ret);
}
