/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "devices.h"
#include "fs-in-root.h"
#include "macro.h"
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

/* Binds host node /dev/<name> (type 'c' or 'b', major:minor checked) onto a new empty file <leaf> in dir_fd
 * (the container's /dev or a directory below it). */
static int bind_host_node(int dir_fd, const char *name, const char *leaf, char type, unsigned major,
                          unsigned minor, BerthError *err) {
        _cleanup_close_ int host_fd = -EBADF, target_fd = -EBADF, mnt_fd = -EBADF;
        char host_path[300];
        struct stat st;
        int fd;

        /* The host node, not followed if it is a symlink, and checked to be the device it names. */
        (void) snprintf(host_path, sizeof(host_path), "/dev/%s", name);
        host_fd = open(host_path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (host_fd < 0)
                return berth_error_setm(err, errno, "Cannot open host device '%s'", host_path);
        if (fstat(host_fd, &st) < 0)
                return berth_error_setm(err, errno, "Cannot stat host device '%s'", host_path);
        if ((type == 'b' ? !S_ISBLK(st.st_mode) : !S_ISCHR(st.st_mode)) || major(st.st_rdev) != major ||
            minor(st.st_rdev) != minor)
                return berth_error_set(err, EPERM, "Host '%s' is not %s device %u:%u, refusing", host_path,
                                       type == 'b' ? "block" : "character", major, minor);

        fd = openat(dir_fd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd < 0)
                return berth_error_setm(err, errno, "Cannot create /dev/%s in the container", name);
        safe_close(fd);
        target_fd = openat(dir_fd, leaf, O_PATH | O_NOFOLLOW | O_CLOEXEC);
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

static int bind_host_device(int dev_fd, const char *name, unsigned major, unsigned minor, BerthError *err) {
        return bind_host_node(dev_fd, name, name, 'c', major, minor, err);
}

/* One node of linux.devices (a privileged container's host devices): its directories are created in the
 * container's /dev tmpfs (never following anything), then the host node is bound. Nodes already there
 * (the defaults) are kept. */
static int bind_spec_device(int dev_fd, const SpecDevice *d, BerthError *err) {
        _cleanup_close_ int dir_fd = -EBADF;
        const char *rel = d->path + strlen("/dev/"), *leaf;
        _cleanup_free_ char *copy = strdup(rel);
        char *slash;
        int fd;

        if (!copy)
                return berth_error_set(err, ENOMEM, "Out of memory");
        dir_fd = fcntl(dev_fd, F_DUPFD_CLOEXEC, 3);
        if (dir_fd < 0)
                return berth_error_setm(err, errno, "Cannot duplicate /dev");
        leaf = copy;
        while ((slash = strchr(leaf, '/'))) {
                *slash = '\0';
                if (mkdirat(dir_fd, leaf, 0755) < 0 && errno != EEXIST)
                        return berth_error_setm(err, errno, "Cannot create directory for %s", d->path);
                fd = openat(dir_fd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return berth_error_setm(err, errno, "Cannot open directory for %s", d->path);
                safe_close(dir_fd);
                dir_fd = fd;
                leaf = slash + 1;
        }
        if (faccessat(dir_fd, leaf, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return 0;
        return bind_host_node(dir_fd, rel, leaf, d->type, d->major, d->minor, err);
}

int dev_setup(int root_fd, const Spec *spec, BerthError *err) {
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
        for (size_t i = 0; i < spec->n_devices; i++) {
                r = bind_spec_device(dev_fd, &spec->devices[i], err);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(default_links); i++)
                if (symlinkat(default_links[i].target, dev_fd, default_links[i].name) < 0 && errno != EEXIST)
                        return berth_error_setm(err, errno, "Cannot create /dev/%s", default_links[i].name);
        return 0;
}
