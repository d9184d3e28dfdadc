/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "namespaces.h"
#include "netns.h"

int netns_create(const char *dir, const char *path) {
        int fd, status, r;
        pid_t pid;

        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
        if (fd < 0)
                return -errno;
        close(fd);
        /* The namespace is made by a child: we stay in the host's network namespace, where the plugins
         * must run and the container's veth peer lives. */
        pid = fork();
        if (pid < 0) {
                r = -errno;
                (void) unlink(path);
                return r;
        }
        if (pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (unshare(CLONE_NEWNET) < 0)
                        _exit(errno & 0xff);
                /* Loopback up here rather than by CNI's loopback plugin: one ioctl instead of a
                 * plugin's fork, exec and setns on every attach. */
                r = namespaces_loopback_up();
                if (r < 0)
                        _exit(-r & 0xff);
                if (mount("/proc/self/ns/net", path, NULL, MS_BIND, NULL) < 0)
                        _exit(errno & 0xff);
                _exit(0);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                (void) unlink(path);
                return WIFEXITED(status) ? -WEXITSTATUS(status) : -EIO;
        }
        return 0;
}

int netns_remove(const char *path) {
        /* Detached: a container process still inside keeps the namespace alive, not the mount. */
        if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
                return -errno;
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}
