/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "fs-at.h"
#include "json-util.h"
#include "macro.h"
#include "active-rootfs.h"

static int open_active(const char *snapshots_path, bool create, int *ret) {
        _cleanup_close_ int store_fd = -EBADF;
        int fd;

        store_fd = open(snapshots_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (store_fd < 0)
                return -errno;
        if (create && mkdirat(store_fd, ROOTFS_ACTIVE_DIR, 0700) < 0 && errno != EEXIST)
                return -errno;
        fd = openat(store_fd, ROOTFS_ACTIVE_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret = fd;
        return 0;
}

static int make_overlay(const char *snapshots_path, const char *id, char *const *chain_hexes, size_t n,
                        bool read_only, int *ret_mnt, char **ret_error) {
        _cleanup_close_ int fs_fd = -EBADF;
        g_autofree char *upper = g_strdup_printf("%s/" ROOTFS_ACTIVE_DIR "/%s/fs", snapshots_path, id);
        g_autofree char *work = g_strdup_printf("%s/" ROOTFS_ACTIVE_DIR "/%s/work", snapshots_path, id);
        int mnt;

        fs_fd = fsopen("overlay", FSOPEN_CLOEXEC);
        if (fs_fd < 0)
                return json_set_error(ret_error, errno, "overlayfs is not available: %s", strerror(errno));
        /* One lower layer per call ("lowerdir+", Linux 6.8): deep images are not bound by the one page
         * of options a "lowerdir=a:b:c" string has to fit in. */
        for (size_t i = 0; i < n; i++) {
                g_autofree char *p = g_strdup_printf("%s/%s/fs", snapshots_path, chain_hexes[i]);
                if (fsconfig(fs_fd, FSCONFIG_SET_STRING, "lowerdir+", p, 0) < 0) {
                        if (errno != EINVAL || i > 0)
                                return json_set_error(ret_error, errno, "cannot add layer %s: %s", p,
                                                      strerror(errno));
                        /* Older kernels: the classic string. */
                        g_autoptr(GString) lower = g_string_new(NULL);
                        for (size_t k = 0; k < n; k++)
                                g_string_append_printf(lower, "%s%s/%s/fs", k ? ":" : "", snapshots_path,
                                                       chain_hexes[k]);
                        if (fsconfig(fs_fd, FSCONFIG_SET_STRING, "lowerdir", lower->str, 0) < 0)
                                return json_set_error(ret_error, errno, "cannot configure the overlay: %s",
                                                      strerror(errno));
                        break;
                }
        }
        if (fsconfig(fs_fd, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
            fsconfig(fs_fd, FSCONFIG_SET_STRING, "workdir", work, 0) < 0 ||
            fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return json_set_error(ret_error, errno, "cannot create the overlay: %s", strerror(errno));
        mnt = fsmount(fs_fd, FSMOUNT_CLOEXEC, read_only ? MOUNT_ATTR_RDONLY : 0);
        if (mnt < 0)
                return json_set_error(ret_error, errno, "cannot mount the overlay: %s", strerror(errno));
        *ret_mnt = mnt;
        return 0;
}

int active_rootfs_mount(const char *snapshots_path, const char *id, char *const *chain_hexes, size_t n,
                        const char *target_path, bool read_only, char **ret_error) {
        _cleanup_close_ int active_fd = -EBADF, dir_fd = -EBADF, mnt_fd = -EBADF, target_fd = -EBADF;
        int r;

        r = open_active(snapshots_path, true, &active_fd);
        if (r < 0)
                return json_set_error(ret_error, r, "cannot open the active snapshots of %s: %s",
                                      snapshots_path, strerror(-r));
        /* A leftover of a killed create with this id would be reused silently: refuse it instead (ids are
         * random; start-up cleaning removes leftovers). */
        if (mkdirat(active_fd, id, 0700) < 0)
                return json_set_error(ret_error, errno, "cannot create the active snapshot: %s",
                                      strerror(errno));
        dir_fd = openat(active_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0 || mkdirat(dir_fd, "fs", 0755) < 0 || mkdirat(dir_fd, "work", 0700) < 0) {
                r = -errno;
                (void) rm_rf_at(active_fd, id, NULL);
                return json_set_error(ret_error, r, "cannot create the active snapshot: %s", strerror(-r));
        }

        r = make_overlay(snapshots_path, id, chain_hexes, n, read_only, &mnt_fd, ret_error);
        if (r >= 0) {
                target_fd = open(target_path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (target_fd < 0 || move_mount(mnt_fd, "", target_fd, "",
                                                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                        r = json_set_error(ret_error, errno, "cannot attach the root file system: %s",
                                           strerror(errno));
        }
        if (r < 0)
                (void) rm_rf_at(active_fd, id, NULL);
        return r;
}

int active_rootfs_remove(const char *snapshots_path, const char *id, const char *target_path) {
        _cleanup_close_ int active_fd = -EBADF;
        int r;

        /* Detached: a process that still has a cwd or fd in it does not keep the rest of us waiting. */
        if (umount2(target_path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
                return -errno;
        r = open_active(snapshots_path, false, &active_fd);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = rm_rf_at(active_fd, id, NULL);
        return r == -ENOENT ? 0 : r;
}
