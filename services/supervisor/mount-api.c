/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>

#include "macro.h"
#include "mount-api.h"

int mount_move_onto(int mnt_fd, int target_fd) {
        return RET_NERRNO(
                move_mount(mnt_fd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH));
}

static int fs_configure(int fs_fd, const char *source, const char *data) {
        char buf[1024];

        if (source && fsconfig(fs_fd, FSCONFIG_SET_STRING, "source", source, 0) < 0)
                return negative_errno();
        if (data && *data) {
                snprintf(buf, sizeof(buf), "%s", data);
                for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
                     tok = strtok_r(NULL, ",", &save)) {
                        char *eq = strchr(tok, '=');
                        int r;
                        if (eq) {
                                *eq = '\0';
                                r = fsconfig(fs_fd, FSCONFIG_SET_STRING, tok, eq + 1, 0);
                        } else
                                r = fsconfig(fs_fd, FSCONFIG_SET_FLAG, tok, NULL, 0);
                        if (r < 0)
                                return negative_errno();
                }
        }
        if (fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return negative_errno();
        return 0;
}

int mount_fs_detached(const char *type, const char *source, const char *data, uint64_t attr, int *ret_fd) {
        _cleanup_close_ int fs_fd = -EBADF;
        int r, mfd;

        fs_fd = fsopen(type, FSOPEN_CLOEXEC);
        if (fs_fd < 0)
                return negative_errno();
        r = fs_configure(fs_fd, source, data);
        if (r < 0)
                return r;
        mfd = fsmount(fs_fd, FSMOUNT_CLOEXEC, (unsigned) attr);
        if (mfd < 0)
                return negative_errno();
        *ret_fd = mfd;
        return 0;
}
