/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "devices.h"
#include "fs-in-root.h"
#include "mount-api.h"

static const struct {
        const char *name;
        unsigned major, minor;
} default_devices[] = {
        { "null", 1, 3 },   { "zero", 1, 5 },    { "full", 1, 7 },
        { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
};

static const struct {
        const char *name, *target;
} default_links[] = {
        { "ptmx", "pts/ptmx" },          { "fd", "/proc/self/fd" },       { "stdin", "/proc/self/fd/0" },
        { "stdout", "/proc/self/fd/1" }, { "stderr", "/proc/self/fd/2" },
};

static int bind_host_device(int dev_fd, const char *name, unsigned major, unsigned minor, BerthError *err) {
        _cleanup_close_ int host_fd = -EBADF, target_fd = -EBADF, mnt_fd = -EBADF;
        char host_path[64];
        struct stat st;
        int fd;

        /* The host node, not followed if it is a symlink, and checked to be the device it names. */
        (void) snprintf(host_path, sizeof(host_path), "/dev/%s", name);
        host_fd = open(host_path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (host_fd < 0)
                return berth_error_setm(err, errno, "Cannot open host device '%s'", host_path);
        if (fstat(host_fd, &st) < 0)
                return berth_error_setm(err, errno, "Cannot stat host device '%s'", host_path);
        if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != major || minor(st.st_rdev) != minor)
                return berth_error_set(err, EPERM, "Host '%s' is not character device %u:%u, refusing",
                                       host_path, major, minor);

        fd = openat(dev_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd < 0)
                return berth_error_setm(err, errno, "Cannot create /dev/%s in the container", name);
        safe_close(fd);
        target_fd = openat(dev_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (target_fd < 0)
                return berth_error_setm(err, errno, "Cannot open /dev/%s in the container", name);

        mnt_fd = open_tree(host_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (mnt_fd < 0)
                return berth_error_setm(err, errno, "Cannot clone host device '%s'", host_path);
        struct mount_attr a = { .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
                                .attr_clr = MOUNT_ATTR_NODEV };
        if (mount_setattr(mnt_fd, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0)
                return berth_error_setm(err, errno, "Cannot set flags of /dev/%s", name);
        if (mount_move_onto(mnt_fd, target_fd) < 0)
                return berth_error_setm(err, errno, "Cannot bind /dev/%s", name);
        return 0;
}

int dev_setup(int root_fd, BerthError *err) {
        _cleanup_close_ int dev_fd = -EBADF;
        struct stat st;
        int r;

        /* RESOLVE_NO_SYMLINKS: "dev" itself may not be a symlink (CVE-2026-41579 / CVE-2026-47766 class:
         * a /dev symlink redirected device setup). Directories are opened O_DIRECTORY for the *at calls. */
        dev_fd = openat2_fd(root_fd, "dev", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                            RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
        if (dev_fd == -ELOOP || dev_fd == -ENOTDIR)
                return berth_error_set(err, ELOOP,
                                       "/dev in the rootfs is not a directory (a symlink?), refusing");
        if (dev_fd < 0)
                return berth_error_setm(err, -dev_fd, "Cannot open /dev in the rootfs");
        if (fstat(dev_fd, &st) < 0)
                return berth_error_setm(err, errno, "Cannot stat /dev");

        for (size_t i = 0; i < ELEMENTSOF(default_devices); i++) {
                r = bind_host_device(dev_fd, default_devices[i].name, default_devices[i].major,
                                     default_devices[i].minor, err);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(default_links); i++)
                if (symlinkat(default_links[i].target, dev_fd, default_links[i].name) < 0 && errno != EEXIST)
                        return berth_error_setm(err, errno, "Cannot create /dev/%s", default_links[i].name);
        return 0;
}
