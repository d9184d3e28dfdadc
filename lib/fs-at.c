/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs-at.h"
#include "macro.h"

/* A tree deeper than this is not ours: layer paths are capped far lower (LAYER_PATH_DEPTH_MAX), and the
 * bound keeps the recursion (one fd and one DIR per level) finite on a corrupted store. */
#define RM_RF_DEPTH_MAX 1024U

int open_in_root(int root_fd, const char *path, int flags, uint64_t extra_resolve) {
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC),
                /* SECURITY: RESOLVE_IN_ROOT makes "/" and ".." stop at root_fd, for every component and
                 * every symlink met on the way (CVE-2014-6407, CVE-2014-9356, CVE-2025-47290 style
                 * breakouts); magic links (/proc/self/fd/…) are refused outright. */
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | extra_resolve,
        };
        int fd;

        fd = (int) syscall(SYS_openat2, root_fd, isempty(path) ? "." : path, &how, sizeof(how));
        return fd < 0 ? -errno : fd;
}

int opendir_at(int dir_fd, const char *name, DIR **ret) {
        _cleanup_close_ int fd = -EBADF;
        DIR *d;

        /* fdopendir() takes ownership; work on a fresh open so the caller's fd stays theirs. */
        fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d)
                return -errno;
        TAKE_FD(fd);
        *ret = d;
        return 0;
}

static int rm_rf_at_depth(int parent_fd, const char *name, uint64_t *freed, unsigned depth);

static int rm_rf_children_depth(int dir_fd, uint64_t *freed, unsigned depth) {
        DIR *d;
        struct dirent *de;
        int r = 0;

        if (depth > RM_RF_DEPTH_MAX)
                return -ELOOP;

        r = opendir_at(dir_fd, ".", &d);
        if (r < 0)
                return r;

        while ((errno = 0, de = readdir(d))) {
                int k;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                k = rm_rf_at_depth(dirfd(d), de->d_name, freed, depth + 1);
                if (k < 0 && k != -ENOENT && r >= 0)
                        r = k;
        }
        if (errno != 0 && r >= 0)
                r = -errno;
        closedir(d);
        return r;
}

static int rm_rf_at_depth(int parent_fd, const char *name, uint64_t *freed, unsigned depth) {
        struct stat st;
        int r;

        if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;

        if (S_ISDIR(st.st_mode)) {
                _cleanup_close_ int fd = -EBADF;

                /* SECURITY: O_NOFOLLOW|O_DIRECTORY: if the name was swapped for a symlink since the stat,
                 * the open fails instead of descending into the link's target. */
                fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                r = rm_rf_children_depth(fd, freed, depth);
                if (r < 0)
                        return r;
                if (unlinkat(parent_fd, name, AT_REMOVEDIR) < 0)
                        return -errno;
        } else if (unlinkat(parent_fd, name, 0) < 0)
                return -errno;

        if (freed)
                *freed += (uint64_t) st.st_blocks * 512U;
        return 0;
}

int rm_rf_at(int parent_fd, const char *name, uint64_t *freed) {
        return rm_rf_at_depth(parent_fd, name, freed, 0);
}

int rm_rf_children(int dir_fd, uint64_t *freed) {
        return rm_rf_children_depth(dir_fd, freed, 0);
}
