/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <fcntl.h>
#include <glib.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "berth-limits.h"
#include "fs-at.h"
#include "fs-util.h"
#include "implied-dirs.h"
#include "log.h"
#include "macro.h"

static bool copy_xattr_allowed(const char *name) {
        /* The same allow-list the extractor applies to layers (lower snapshots only hold those, plus
         * trusted.overlay.opaque, which containerd does not copy either: it marks one layer's dir). */
        if (strncmp(name, "user.", 5) == 0)
                return strncmp(name, "user.overlay.", 13) != 0;
        return streq(name, "security.capability") || streq(name, "system.posix_acl_access") ||
               streq(name, "system.posix_acl_default");
}

static int copy_xattrs(int from, int to) {
        char names[XATTR_LIST_MAX];
        ssize_t n;

        n = flistxattr(from, names, sizeof(names));
        if (n < 0)
                return errno == ENOTSUP ? 0 : -errno;
        for (const char *name = names; name < names + n; name += strlen(name) + 1) {
                char value[XATTR_SIZE_MAX_BERTH];
                ssize_t k;

                if (!copy_xattr_allowed(name))
                        continue;
                k = fgetxattr(from, name, value, sizeof(value));
                if (k < 0) {
                        if (errno == ENODATA || errno == ERANGE)
                                continue;
                        return -errno;
                }
                if (fsetxattr(to, name, value, (size_t) k, 0) < 0)
                        return -errno;
        }
        return 0;
}

/* The metadata source for `path`: the first lower that has it as a directory. Returns an fd
 * (O_RDONLY|O_DIRECTORY), or -ENOENT when the default stays. */
static int find_in_lowers(const char *path, const int *lower_fds, size_t n_lowers) {
        for (size_t i = 0; i < n_lowers; i++) {
                int fd;

                /* SECURITY: resolved in that snapshot as its root (RESOLVE_IN_ROOT, no magic links): a
                 * lower layer's symlinks are followed as containerd's fs.RootPath does, never out of it. */
                fd = open_in_root(lower_fds[i], path, O_RDONLY | O_DIRECTORY, 0);
                if (fd == -ENOENT)
                        continue;
                if (fd < 0)
                        /* ENOTDIR (replaced by a non-directory: do not copy, containerd: break), ELOOP, …:
                         * something else is in the way */
                        return -ENOENT;
                return fd;
        }
        return -ENOENT;
}

int implied_dirs_apply(int list_fd, size_t max_bytes, int fs_fd, const int *lower_fds, size_t n_lowers,
                       char **ret_error) {
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t got = 0;
        ssize_t n;
        int r;

        if (n_lowers == 0)
                return 0; /* a base layer: the defaults are containerd's too */
        if (fstat(list_fd, &st) < 0)
                return -errno;
        if (st.st_size == 0)
                return 0;
        if ((uint64_t) st.st_size > max_bytes) {
                if (ret_error)
                        *ret_error = g_strdup_printf("the layer implies more directories than the limit");
                return -E2BIG;
        }
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        n = pread_full(list_fd, buf, (size_t) st.st_size, 0);
        if (n < 0)
                return (int) n;
        got = (size_t) n;
        buf[got] = '\0';

        for (const char *path = buf; path < buf + got; path += strlen(path) + 1) {
                _cleanup_close_ int upper = -EBADF, lower = -EBADF;
                struct stat ls;

                /* The child wrote the list, so it is checked like anything from the sandbox: non-empty,
                 * relative, and opened in the new snapshot without following any symlink. A directory
                 * that a later entry replaced (by a symlink, a file) is skipped. */
                if (isempty(path) || path[0] == '/' || strlen(path) > PATH_LENGTH_MAX)
                        continue;
                upper = open_in_root(fs_fd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, RESOLVE_NO_SYMLINKS);
                if (upper < 0)
                        continue;
                lower = find_in_lowers(path, lower_fds, n_lowers);
                if (lower < 0)
                        continue;
                if (fstat(lower, &ls) < 0)
                        return -errno;
                /* chown first (it may clear set-id bits), then the mode, then xattrs. */
                if (fchown(upper, ls.st_uid, ls.st_gid) < 0 || fchmod(upper, ls.st_mode & 07777) < 0)
                        r = -errno;
                else
                        r = copy_xattrs(lower, upper);
                if (r < 0) {
                        if (ret_error)
                                *ret_error = g_strdup_printf(
                                        "cannot copy the metadata of '%.256s' from below: %s", path,
                                        strerror(-r));
                        return r;
                }
                log_debug("Implied directory '%s' takes mode %04o, owner %u:%u from a lower layer.", path,
                          (unsigned) (ls.st_mode & 07777), (unsigned) ls.st_uid, (unsigned) ls.st_gid);
        }
        return 0;
}
