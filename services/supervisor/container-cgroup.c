/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "container-cgroup.h"
#include "macro.h"

#define CGROUP_ROOT "/sys/fs/cgroup/"

int container_cgroup_find(int state_dir_fd, ContainerCgroup *ret) {
        char buf[PATH_MAX], *rel, *file;
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;
        int r;

        r = cgroup_detect_layout(&ret->layout);
        if (r < 0)
                return r;
        fd = openat(state_dir_fd, CGROUP_OOM_FILE_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        /* SECURITY: the file is root's, in a root-only directory; still, only a path under the cgroup
         * mount, without "..", is used to open and write files. */
        if (!cgroup_oom_path_is_valid(buf))
                return -EBADMSG;
        rel = buf + strlen(CGROUP_ROOT);
        file = strrchr(rel, '/');
        if (!file)
                return -EBADMSG;
        *file = 0;
        if (ret->layout != CGROUP_LAYOUT_V2) {
                /* v1: "<hierarchy>/<rel>" */
                rel = strchr(rel, '/');
                if (!rel)
                        return -EBADMSG;
                rel++;
        }
        if (!*rel || strlen(rel) >= sizeof(ret->rel))
                return -EBADMSG;
        memcpy(ret->rel, rel, strlen(rel) + 1);
        return 0;
}

int container_cgroup_dir(const ContainerCgroup *cg, const char *controller, char *buf, size_t size) {
        struct stat st;

        if (!controller) {
                if (cg->layout == CGROUP_LAYOUT_V1)
                        return -ENOENT;
                if (snprintf(buf, size, CGROUP_ROOT "%s%s",
                             cg->layout == CGROUP_LAYOUT_HYBRID ? "unified/" : "", cg->rel) >= (int) size)
                        return -ENAMETOOLONG;
                return stat(buf, &st) < 0 ? -errno : 0;
        }
        if (cg->layout == CGROUP_LAYOUT_V2)
                return -ENOENT;
        /* Controllers may share a hierarchy: "cpu,cpuacct" is the usual pair. */
        const char *const before[] = { "", "cpu,", "", "", "net_cls,", "" };
        const char *const after[] = { "", "", ",cpu", ",cpuacct", "", ",net_prio" };
        for (size_t i = 0; i < ELEMENTSOF(before); i++) {
                if (snprintf(buf, size, CGROUP_ROOT "%s%s%s/%s", before[i], controller, after[i], cg->rel) >=
                    (int) size)
                        return -ENAMETOOLONG;
                if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode))
                        return 0;
        }
        return -ENOENT;
}

int cgroup_read_text(const char *dir, const char *file, char *buf, size_t size) {
        char path[PATH_MAX];
        _cleanup_close_ int fd = -EBADF;
        size_t len = 0;
        ssize_t n;

        if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int) sizeof(path))
                return -ENAMETOOLONG;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return -errno;
        while (len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) > 0)
                len += (size_t) n;
        buf[len] = 0;
        return 0;
}

int cgroup_read_u64(const char *dir, const char *file, uint64_t *ret) {
        char buf[64], *end;
        unsigned long long v;
        int r;

        r = cgroup_read_text(dir, file, buf, sizeof(buf));
        if (r < 0)
                return r;
        if (strncmp(buf, "max", 3) == 0) {
                *ret = UINT64_MAX;
                return 0;
        }
        if (buf[0] < '0' || buf[0] > '9')
                return -EBADMSG;
        errno = 0;
        v = strtoull(buf, &end, 10);
        if (errno != 0 || (*end && *end != '\n' && *end != ' '))
                return -EBADMSG;
        *ret = v;
        return 0;
}
