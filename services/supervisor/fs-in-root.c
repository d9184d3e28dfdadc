/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs-in-root.h"
#include "macro.h"

int openat2_fd(int dir_fd, const char *path, uint64_t flags, uint64_t resolve) {
        struct open_how how = { .flags = flags, .resolve = resolve };
        long fd = syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
        return fd < 0 ? negative_errno() : (int) fd;
}

static int open_prefix(int root_fd, const char *path, bool nofollow) {
        return openat2_fd(root_fd, path, O_PATH | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0),
                          RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

int chase_in_root(int root_fd, const char *path, ChaseFlags flags, int *ret_fd) {
        char buf[4096];
        size_t len;
        int fd, r;

        while (*path == '/')
                path++;
        len = strlen(path);
        if (len >= sizeof(buf))
                return -ENAMETOOLONG;
        if (len == 0) {
                fd = open_prefix(root_fd, ".", false);
                if (fd < 0)
                        return fd;
                *ret_fd = fd;
                return 0;
        }
        memcpy(buf, path, len + 1);
        while (len > 0 && buf[len - 1] == '/')
                buf[--len] = '\0';

        fd = open_prefix(root_fd, buf, flags & CHASE_NOFOLLOW_LAST);
        if (fd == -ENOENT && (flags & CHASE_MKDIR_P)) {
                /* Walk down: each missing component is created in its parent, which was itself
                 * resolved inside the root. */
                _cleanup_close_ int parent = open_prefix(root_fd, ".", false);
                if (parent < 0)
                        return parent;
                char *p = buf;
                for (;;) {
                        char *slash = strchr(p, '/');
                        bool last = !slash;
                        if (slash)
                                *slash = '\0';
                        if (*p == '\0') { /* "a//b" */
                                if (last)
                                        break;
                                *slash = '/';
                                p = slash + 1;
                                continue;
                        }
                        if (last && (flags & CHASE_MKFILE)) {
                                int f = openat(parent, p,
                                               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
                                if (f < 0 && errno != EEXIST)
                                        return negative_errno();
                                safe_close(f);
                        } else if (mkdirat(parent, p, 0755) < 0 && errno != EEXIST)
                                return negative_errno();
                        if (last)
                                break;
                        *slash = '/';
                        /* Re-resolve the prefix from the root, never from the name we just made. */
                        char saved = slash[0];
                        slash[0] = '\0';
                        int next = open_prefix(root_fd, buf, false);
                        slash[0] = saved;
                        if (next < 0)
                                return next;
                        safe_close(parent);
                        parent = next;
                        p = slash + 1;
                }
                fd = open_prefix(root_fd, buf, flags & CHASE_NOFOLLOW_LAST);
        }
        if (fd < 0)
                return fd;

        if (flags & CHASE_NOFOLLOW_LAST) {
                struct stat st;
                if (fstat(fd, &st) < 0) {
                        r = negative_errno();
                        safe_close(fd);
                        return r;
                }
                if (S_ISLNK(st.st_mode)) {
                        safe_close(fd);
                        return -ELOOP;
                }
        }
        *ret_fd = fd;
        return 0;
}
