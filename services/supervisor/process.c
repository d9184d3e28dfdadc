/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs-in-root.h"
#include "process.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

int process_set_rlimits(const Spec *spec, BerthError *err) {
        for (size_t i = 0; i < spec->n_rlimits; i++) {
                struct rlimit rl = {
                        .rlim_cur =
                                spec->rlimits[i].soft == UINT64_MAX ? RLIM_INFINITY : spec->rlimits[i].soft,
                        .rlim_max =
                                spec->rlimits[i].hard == UINT64_MAX ? RLIM_INFINITY : spec->rlimits[i].hard,
                };
                if (setrlimit(spec->rlimits[i].resource, &rl) < 0)
                        return berth_error_setm(err, errno, "Cannot set rlimit %d",
                                                spec->rlimits[i].resource);
        }
        return 0;
}

int process_set_oom_score_adj(const Spec *spec, BerthError *err) {
        _cleanup_close_ int fd = -EBADF;
        char v[16];
        int r;

        if (!spec->have_oom_score_adj)
                return 0;
        fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return berth_error_setm(err, errno, "Cannot open oom_score_adj");
        r = snprintf(v, sizeof(v), "%d", spec->oom_score_adj);
        if (write(fd, v, (size_t) r) != r)
                return berth_error_setm(err, errno, "Cannot set oom_score_adj to %d", spec->oom_score_adj);
        return 0;
}

int process_set_user(const Spec *spec, BerthError *err) {
        /* Keep the permitted set across setresuid(non-zero); caps_apply() then sets exactly the
         * spec's sets (without KEEPCAPS the kernel would clear them, and we could not add back the
         * ones the spec grants a non-root user). */
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                return berth_error_setm(err, errno, "Cannot set PR_SET_KEEPCAPS");
        /* SECURITY: always, also to an empty list, so that no group of ours (root's) leaks into the
         * container: CVE-2023-25173. */
        if (setgroups(spec->n_additional_gids, spec->additional_gids) < 0)
                return berth_error_setm(err, errno, "Cannot set the supplementary groups");
        if (setresgid(spec->gid, spec->gid, spec->gid) < 0)
                return berth_error_setm(err, errno, "Cannot set gid %u", (unsigned) spec->gid);
        if (setresuid(spec->uid, spec->uid, spec->uid) < 0)
                return berth_error_setm(err, errno, "Cannot set uid %u", (unsigned) spec->uid);
        if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
                return berth_error_setm(err, errno, "Cannot clear PR_SET_KEEPCAPS");
        return 0;
}

int process_set_cwd(const Spec *spec, BerthError *err) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        /* Resolved from the new root with RESOLVE_NO_MAGICLINKS: a cwd of /proc/self/fd/N (the
         * "Leaky Vessels" trick, a directory fd of the host) cannot be entered, whether or not such an
         * fd is still open. */
        r = chase_in_root(AT_FDCWD, spec->cwd, CHASE_MKDIR_P, &fd);
        if (r < 0)
                return berth_error_setm(err, -r, "Cannot open the working directory '%s'", spec->cwd);
        if (fstat(fd, &st) < 0)
                return berth_error_setm(err, errno, "Cannot stat the working directory '%s'", spec->cwd);
        if (!S_ISDIR(st.st_mode))
                return berth_error_set(err, ENOTDIR, "The working directory '%s' is not a directory",
                                       spec->cwd);
        if (fchdir(fd) < 0)
                return berth_error_setm(err, errno, "Cannot enter the working directory '%s'", spec->cwd);
        return 0;
}

static int cmp_int(const void *a, const void *b) {
        int x = *(const int *) a, y = *(const int *) b;
        return x < y ? -1 : x > y;
}

int process_close_fds(const int *keep, size_t n_keep, BerthError *err) {
        int sorted[16];
        unsigned lo = 3;

        if (n_keep > ELEMENTSOF(sorted))
                return berth_error_set(err, E2BIG, "Too many fds to keep");
        memcpy(sorted, keep, n_keep * sizeof(int));
        qsort(sorted, n_keep, sizeof(int), cmp_int);
        /* SECURITY: no host fd may reach the container (CVE-2024-21626, CVE-2016-9962): everything
         * except stdio and our own O_CLOEXEC sync fds is closed, not merely marked close-on-exec. */
        for (size_t i = 0; i < n_keep; i++) {
                if (sorted[i] < (int) lo)
                        continue;
                if ((unsigned) sorted[i] > lo &&
                    syscall(SYS_close_range, lo, (unsigned) sorted[i] - 1, 0) < 0)
                        return berth_error_setm(err, errno, "close_range failed");
                lo = (unsigned) sorted[i] + 1;
        }
        if (syscall(SYS_close_range, lo, ~0U, 0) < 0)
                return berth_error_setm(err, errno, "close_range failed");
        return 0;
}

void process_reset_signals(void) {
        struct sigaction sa = { .sa_handler = SIG_DFL };
        sigset_t none;

        sigemptyset(&sa.sa_mask);
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, &sa, NULL); /* EINVAL for the libc-reserved ones: fine */
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
}

static const char *env_get(char **env, const char *name) {
        size_t l = strlen(name);
        STRV_FOREACH(e, env)
        if (strncmp(*e, name, l) == 0 && (*e)[l] == '=')
                return *e + l + 1;
        return NULL;
}

static int status_for(int e) {
        return e == ENOENT || e == ENOTDIR || e == ELOOP || e == ENAMETOOLONG ? 127 : 126;
}

int process_exec(const Spec *spec, int *ret_status, BerthError *err) {
        const char *file = spec->args[0];
        char **envp = spec->env ?: (char *[]){ NULL };
        char path[4096];
        int last = ENOENT;
        bool eacces = false;

        if (strchr(file, '/')) {
                execve(file, spec->args, envp);
                *ret_status = status_for(errno);
                return berth_error_setm(err, errno, "Cannot execute '%s'", file);
        }

        /* PATH search like a shell (execvpe): the container's PATH, not ours. */
        const char *p = env_get(spec->env, "PATH") ?: DEFAULT_PATH;
        for (;;) {
                const char *colon = strchrnul(p, ':');
                size_t dl = (size_t) (colon - p);
                if (snprintf(path, sizeof(path), "%.*s%s%s", (int) dl, p, dl ? "/" : "", file) <
                    (int) sizeof(path)) {
                        execve(path, spec->args, envp);
                        if (errno == EACCES)
                                eacces = true;
                        else if (errno != ENOENT && errno != ENOTDIR)
                                last = errno;
                        if (errno == ENOEXEC || errno == E2BIG || errno == ENOMEM || errno == ETXTBSY) {
                                last = errno;
                                break;
                        }
                }
                if (*colon == '\0')
                        break;
                p = colon + 1;
        }
        if (eacces && last == ENOENT)
                last = EACCES;
        *ret_status = status_for(last);
        return berth_error_setm(err, last, "Cannot execute '%s'", file);
}
