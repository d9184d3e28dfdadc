/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host-mntns.h"
#include "macro.h"

int host_mntns_is_ours(void) {
        struct stat ours, host;

        if (stat("/proc/self/ns/mnt", &ours) < 0)
                return negative_errno();
        if (stat("/proc/1/ns/mnt", &host) < 0) {
                /* A PID 1 we may not inspect (a VM's or sandbox's own init, outside our user
                 * namespace) is not a systemd that gave us a private namespace: nothing to join. */
                if (errno == EACCES || errno == EPERM)
                        return 1;
                return negative_errno();
        }
        return ours.st_dev == host.st_dev && ours.st_ino == host.st_ino;
}

int host_mntns_join(void) {
        _cleanup_close_ int ns_fd = -EBADF;
        int r;

        r = host_mntns_is_ours();
        if (r < 0)
                return r;
        if (r == 0) {
                ns_fd = open("/proc/1/ns/mnt", O_RDONLY | O_CLOEXEC);
                if (ns_fd < 0)
                        return negative_errno();
                /* SECURITY: only the supervisor's own children call this; it widens what they see
                 * to what root on the host sees, which is what their mounts are for. */
                if (setns(ns_fd, CLONE_NEWNS) < 0)
                        return negative_errno();
        }
        if (chdir("/") < 0)
                return negative_errno();
        return 0;
}
