/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "console.h"
#include "fs-in-root.h"
#include "macro.h"
#include "mount-api.h"

int console_bind(int slave_fd, BerthError *err) {
        _cleanup_close_ int dev_fd = -EBADF, target_fd = -EBADF, mnt_fd = -EBADF;
        struct stat st;
        int fd;

        /* SECURITY: "/dev" is the tmpfs the engine mounted (a symlink there would have failed dev_setup),
         * opened without following anything; the target is created O_EXCL so an existing node or symlink
         * of the image cannot redirect the bind. */
        dev_fd = openat2_fd(AT_FDCWD, "/dev", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                            RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
        if (dev_fd < 0)
                return berth_error_setm(err, -dev_fd, "Cannot open /dev for the console");
        fd = openat(dev_fd, "console", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0000);
        if (fd < 0)
                return berth_error_setm(err, errno, "Cannot create /dev/console");
        safe_close(fd);
        target_fd = openat(dev_fd, "console", O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (target_fd < 0)
                return berth_error_setm(err, errno, "Cannot open /dev/console");
        if (fstat(target_fd, &st) < 0 || !S_ISREG(st.st_mode))
                return berth_error_set(err, EPERM, "/dev/console changed under us, refusing");

        /* The pty peer's own inode in the container's devpts instance (not a path: /dev/pts/N could be
         * anything by now), cloned as a detached bind and attached onto the placeholder. */
        mnt_fd = open_tree(slave_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (mnt_fd < 0)
                return berth_error_setm(err, errno, "Cannot clone the terminal for /dev/console");
        if (mount_move_onto(mnt_fd, target_fd) < 0)
                return berth_error_setm(err, errno, "Cannot bind the terminal onto /dev/console");
        return 0;
}
