/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "namespaces.h"

static const unsigned long ns_flags[_SPEC_NS_MAX] = {
        [SPEC_NS_MOUNT] = CLONE_NEWNS,  [SPEC_NS_PID] = CLONE_NEWPID, [SPEC_NS_UTS] = CLONE_NEWUTS,
        [SPEC_NS_IPC] = CLONE_NEWIPC,   [SPEC_NS_NET] = CLONE_NEWNET, [SPEC_NS_CGROUP] = CLONE_NEWCGROUP,
        [SPEC_NS_USER] = CLONE_NEWUSER,
};

unsigned long namespaces_clone_flags(const Spec *spec) {
        unsigned long flags = 0;

        for (int t = 0; t < _SPEC_NS_MAX; t++)
                if (spec->namespaces[t].enabled && !spec->namespaces[t].path && t != SPEC_NS_CGROUP)
                        flags |= ns_flags[t];
        return flags;
}

int namespaces_join(const Spec *spec, BerthError *err) {
        /* The user namespace would be joined first (it decides what the others may do); pid joins
         * take effect for children only, so a joined pid namespace is refused rather than half-done. */
        for (int t = 0; t < _SPEC_NS_MAX; t++) {
                const char *path = spec->namespaces[t].path;
                _cleanup_close_ int fd = -EBADF;

                if (!spec->namespaces[t].enabled || !path)
                        continue;
                if (t == SPEC_NS_PID || t == SPEC_NS_MOUNT || t == SPEC_NS_USER)
                        return berth_error_set(err, EOPNOTSUPP,
                                               "Joining an existing %s namespace is not supported",
                                               spec_namespace_name(t));
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return berth_error_setm(err, errno, "Cannot open %s namespace '%s'",
                                                spec_namespace_name(t), path);
                if (setns(fd, (int) ns_flags[t]) < 0)
                        return berth_error_setm(err, errno, "Cannot join %s namespace '%s'",
                                                spec_namespace_name(t), path);
        }
        return 0;
}

int namespaces_unshare_cgroup(const Spec *spec, BerthError *err) {
        if (!spec->namespaces[SPEC_NS_CGROUP].enabled || spec->namespaces[SPEC_NS_CGROUP].path)
                return 0;
        if (unshare(CLONE_NEWCGROUP) < 0)
                return berth_error_setm(err, errno, "Cannot create the cgroup namespace");
        return 0;
}

int namespaces_setup_uts(const Spec *spec, BerthError *err) {
        if (isempty(spec->hostname))
                return 0;
        if (sethostname(spec->hostname, strlen(spec->hostname)) < 0)
                return berth_error_setm(err, errno, "Cannot set hostname '%s'", spec->hostname);
        return 0;
}

int namespaces_loopback_up(void) {
        _cleanup_close_ int fd = -EBADF;
        struct ifreq ifr = {};

        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                return -errno;
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
                return -errno;
        return 0;
}

int namespaces_setup_loopback(const Spec *spec, BerthError *err) {
        int r;

        if (!spec->namespaces[SPEC_NS_NET].enabled || spec->namespaces[SPEC_NS_NET].path)
                return 0;
        r = namespaces_loopback_up();
        if (r < 0)
                return berth_error_setm(err, -r, "Cannot bring lo up");
        return 0;
}
