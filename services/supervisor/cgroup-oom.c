/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup-oom.h"

static int read_small(int dir_fd, const char *path, char *buf, size_t size) {
        int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        int e = errno;
        close(fd);
        if (n < 0)
                return -e;
        buf[n] = '\0';
        return 0;
}

int cgroup_oom_kill_count(const char *events_path, uint64_t *ret) {
        char buf[4096];
        int r = read_small(AT_FDCWD, events_path, buf, sizeof(buf));

        if (r < 0)
                return r;
        for (char *line = buf; line && *line;) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';
                if (strncmp(line, "oom_kill ", 9) == 0) {
                        char *end;
                        errno = 0;
                        unsigned long long v = strtoull(line + 9, &end, 10);
                        if (errno != 0 || end == line + 9)
                                return -EBADMSG;
                        *ret = v;
                        return 0;
                }
                line = nl ? nl + 1 : NULL;
        }
        return -ENODATA;
}

bool cgroup_oom_path_is_valid(const char *path) {
        const char *p;

        if (strncmp(path, "/sys/fs/cgroup/", 15) != 0)
                return false;
        for (p = path + 14; *p; p++) {
                if (*p != '/')
                        continue;
                if (p[1] == '.' && p[2] == '.' && (p[3] == '/' || p[3] == '\0'))
                        return false;
        }
        return true;
}

int cgroup_oom_kill_count_at(int state_dir_fd, uint64_t *ret) {
        char path[4096];
        int r = read_small(state_dir_fd, CGROUP_OOM_FILE_NAME, path, sizeof(path));

        if (r < 0)
                return r;
        path[strcspn(path, "\n")] = '\0';
        if (path[0] != '/')
                return -EBADMSG;
        return cgroup_oom_kill_count(path, ret);
}
