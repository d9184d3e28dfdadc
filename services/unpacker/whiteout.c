/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs-at.h"
#include "macro.h"
#include "whiteout.h"

int whiteout_classify(const char *name, WhiteoutKind *ret, const char **ret_target) {
        const char *target;

        if (strncmp(name, WHITEOUT_PREFIX, strlen(WHITEOUT_PREFIX)) != 0) {
                *ret = WHITEOUT_NONE;
                return 0;
        }
        if (streq(name, WHITEOUT_OPAQUE)) {
                *ret = WHITEOUT_DIR_OPAQUE;
                return 0;
        }
        if (strncmp(name, WHITEOUT_META_PREFIX, strlen(WHITEOUT_META_PREFIX)) == 0) {
                *ret = WHITEOUT_IGNORE;
                return 0;
        }

        target = name + strlen(WHITEOUT_PREFIX);
        /* SECURITY: ".wh.." would whiten the directory itself and ".wh..." its parent (containerd
         * WhiteoutCurrentDirectory / WhiteoutParent): the layer is malformed, refuse it. */
        if (isempty(target) || streq(target, ".") || streq(target, ".."))
                return -EBADMSG;

        *ret = WHITEOUT_FILE;
        if (ret_target)
                *ret_target = target;
        return 0;
}

int whiteout_create(int parent_fd, const char *target, uid_t uid, gid_t gid) {
        int r;

        /* The layer replaces whatever an earlier entry of the same layer put there. rm_rf_at() never
         * follows a symlink, so ".wh.localetc" with localetc -> /etc removes the link only. */
        r = rm_rf_at(parent_fd, target, NULL);
        if (r < 0 && r != -ENOENT)
                return r;

        if (mknodat(parent_fd, target, S_IFCHR | 0000, makedev(0, 0)) < 0)
                return -errno;
        /* As containerd does: the whiteout carries the marker's owner. No follow: it is a device node we
         * just made, and AT_SYMLINK_NOFOLLOW keeps that true even if it were swapped. */
        if (fchownat(parent_fd, target, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        return 0;
}

int whiteout_make_opaque(int dir_fd) {
        /* fd-based: the directory was opened by in-root resolution, no path is looked up again. Needs
         * CAP_SYS_ADMIN (trusted.* namespace), which is why the sandboxed child keeps it. */
        if (fsetxattr(dir_fd, OVERLAY_OPAQUE_XATTR, "y", 1, 0) < 0)
                return -errno;
        return 0;
}
