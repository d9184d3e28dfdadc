/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cgroup.h"
#include "fs-in-root.h"
#include "mount-api.h"
#include "mounts.h"

/* All mounts inside the rootfs use the new mount API: the filesystem or bind is built detached
 * (fsopen/fsmount, open_tree), its flags set while nobody can see it (mount_setattr), and only then
 * attached with move_mount() onto an fd that was resolved inside the root. Nothing is mounted by a
 * path string that the image could redirect between a check and the mount (CVE-2021-30465). */

typedef struct MountOptions {
        uint64_t attr_set, attr_clr;
        uint64_t propagation; /* MS_PRIVATE, … or 0 */
        bool propagation_recursive;
        bool bind, recursive;
        char data[1024]; /* comma-separated filesystem options for fsconfig() */
} MountOptions;

static const struct {
        const char *name;
        uint64_t set, clr;
} attr_options[] = {
        { "ro", MOUNT_ATTR_RDONLY, 0 },
        { "rw", 0, MOUNT_ATTR_RDONLY },
        { "nosuid", MOUNT_ATTR_NOSUID, 0 },
        { "suid", 0, MOUNT_ATTR_NOSUID },
        { "nodev", MOUNT_ATTR_NODEV, 0 },
        { "dev", 0, MOUNT_ATTR_NODEV },
        { "noexec", MOUNT_ATTR_NOEXEC, 0 },
        { "exec", 0, MOUNT_ATTR_NOEXEC },
        { "noatime", MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME },
        { "relatime", MOUNT_ATTR_RELATIME, MOUNT_ATTR__ATIME },
        { "strictatime", MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME },
        { "nodiratime", MOUNT_ATTR_NODIRATIME, 0 },
        { "defaults", 0, 0 },
};

static const struct {
        const char *name;
        uint64_t propagation;
        bool recursive;
} propagation_options[] = {
        { "private", MS_PRIVATE, false },       { "rprivate", MS_PRIVATE, true },
        { "slave", MS_SLAVE, false },           { "rslave", MS_SLAVE, true },
        { "shared", MS_SHARED, false },         { "rshared", MS_SHARED, true },
        { "unbindable", MS_UNBINDABLE, false }, { "runbindable", MS_UNBINDABLE, true },
};

static int parse_options(const SpecMount *m, MountOptions *o, BerthError *err) {
        size_t dlen = 0;

        *o = (MountOptions){};
        if (m->type && streq(m->type, "bind"))
                o->bind = true;
        STRV_FOREACH(opt, m->options) {
                bool done = false;

                if (streq(*opt, "bind")) {
                        o->bind = true;
                        continue;
                }
                if (streq(*opt, "rbind")) {
                        o->bind = o->recursive = true;
                        continue;
                }
                for (size_t i = 0; !done && i < ELEMENTSOF(attr_options); i++)
                        if (streq(*opt, attr_options[i].name)) {
                                o->attr_clr |= attr_options[i].clr;
                                o->attr_set = (o->attr_set & ~attr_options[i].clr) | attr_options[i].set;
                                done = true;
                        }
                for (size_t i = 0; !done && i < ELEMENTSOF(propagation_options); i++)
                        if (streq(*opt, propagation_options[i].name)) {
                                o->propagation = propagation_options[i].propagation;
                                o->propagation_recursive = propagation_options[i].recursive;
                                done = true;
                        }
                if (done)
                        continue;
                /* Anything else is a filesystem option. */
                size_t l = strlen(*opt);
                if (strchr(*opt, ','))
                        return berth_error_set(err, EINVAL, "Mount '%s': option '%s' contains a comma",
                                               m->destination, *opt);
                if (dlen + l + 2 > sizeof(o->data))
                        return berth_error_set(err, E2BIG, "Mount '%s': options too long", m->destination);
                if (dlen > 0)
                        o->data[dlen++] = ',';
                memcpy(o->data + dlen, *opt, l + 1);
                dlen += l;
        }
        return 0;
}

static bool is_api_fs(const char *type) {
        /* Kernel filesystems whose mount point must be a real directory in the image: mounting them
         * through a symlink the image planted is how CVE-2019-19921/CVE-2023-27561 (/proc) and the /dev
         * symlink CVEs redirected the runtime. */
        return type && (streq(type, "proc") || streq(type, "sysfs") || streq(type, "devpts") ||
                        streq(type, "mqueue") || streq(type, "cgroup") || streq(type, "cgroup2"));
}

static bool under_dev(const char *dest) {
        return strncmp(dest, "/dev", 4) == 0 && (dest[4] == '\0' || dest[4] == '/');
}

static int mount_id_of(int fd, const char *path, int flags, uint64_t *ret) {
        struct statx sx;

        if (statx(fd, path, flags | AT_STATX_DONT_SYNC, STATX_MNT_ID, &sx) < 0)
                return negative_errno();
        if (!(sx.stx_mask & STATX_MNT_ID))
                return -EOPNOTSUPP;
        *ret = sx.stx_mnt_id;
        return 0;
}

/* After the move: the destination, resolved again from the root, must now be the root of exactly the
 * mount we attached. A component swapped for a symlink between our resolution and the move (S3) would
 * show a different mount here, and the container is not started. */
static int mount_verify_landed(int root_fd, const char *destination, int mnt_fd) {
        _cleanup_close_ int fd = -EBADF;
        uint64_t want, got;
        int r;

        r = mount_id_of(mnt_fd, "", AT_EMPTY_PATH, &want);
        if (r < 0)
                return r;
        r = chase_in_root(root_fd, destination, 0, &fd);
        if (r < 0)
                return r;
        r = mount_id_of(fd, "", AT_EMPTY_PATH, &got);
        if (r < 0)
                return r;
        return want == got ? 0 : -EXDEV;
}

int mounts_clone_bind_sources(Spec *spec, BerthError *err) {
        for (size_t i = 0; i < spec->n_mounts; i++) {
                SpecMount *m = &spec->mounts[i];
                MountOptions o;
                int r;

                r = parse_options(m, &o, err);
                if (r < 0)
                        return r;
                if (!o.bind || !m->source || m->source[0] != '/')
                        continue; /* mount_one() reports what is wrong with it */
                m->source_mnt_fd = safe_close(m->source_mnt_fd);
                m->source_mnt_fd =
                        open_tree(AT_FDCWD, m->source,
                                  OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (o.recursive ? AT_RECURSIVE : 0));
                if (m->source_mnt_fd < 0)
                        return berth_error_setm(err, errno, "Bind mount '%s': cannot open source '%s'",
                                                m->destination, m->source);
        }
        return 0;
}

static int mount_one(int root_fd, const SpecMount *m, BerthError *err) {
        _cleanup_close_ int mnt_fd = -EBADF, target_fd = -EBADF;
        MountOptions o;
        ChaseFlags chase = CHASE_MKDIR_P;
        int r;

        r = parse_options(m, &o, err);
        if (r < 0)
                return r;

        if (o.bind) {
                struct stat st;
                if (!m->source || m->source[0] != '/')
                        return berth_error_set(err, EINVAL,
                                               "Bind mount '%s': source must be an absolute path",
                                               m->destination);
                /* Cloned by the parent before the init's clone() (mounts_clone_bind_sources()): an fd
                 * the caller passed belongs to the host's mount namespace, where open_tree() from the
                 * init's new namespace is refused. Paths given otherwise resolve in our own view. */
                if (m->source_mnt_fd >= 0)
                        mnt_fd = fcntl(m->source_mnt_fd, F_DUPFD_CLOEXEC, 3);
                else
                        mnt_fd = open_tree(AT_FDCWD, m->source,
                                           OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
                                                   (o.recursive ? AT_RECURSIVE : 0));
                if (mnt_fd < 0)
                        return berth_error_setm(err, errno, "Bind mount '%s': cannot open source '%s'",
                                                m->destination, m->source);
                if (fstat(mnt_fd, &st) < 0)
                        return berth_error_setm(err, errno, "Bind mount '%s'", m->destination);
                if (!S_ISDIR(st.st_mode))
                        chase |= CHASE_MKFILE;
                if (o.attr_set || o.attr_clr) {
                        struct mount_attr a = { .attr_set = o.attr_set, .attr_clr = o.attr_clr };
                        if (mount_setattr(mnt_fd, "", AT_EMPTY_PATH | (o.recursive ? AT_RECURSIVE : 0), &a,
                                          sizeof(a)) < 0)
                                return berth_error_setm(err, errno, "Bind mount '%s': cannot set flags",
                                                        m->destination);
                }
        } else {
                const char *type = m->type;
                if (!type)
                        return berth_error_set(err, EINVAL, "Mount '%s' has no type", m->destination);
                if (is_api_fs(type) || under_dev(m->destination))
                        chase |= CHASE_NOFOLLOW_LAST;
                if (streq(type, "cgroup") || streq(type, "cgroup2"))
                        r = cgroup_mount_detached(o.attr_set, &mnt_fd);
                else
                        r = mount_fs_detached(type, m->source, o.data, o.attr_set, &mnt_fd);
                if (r < 0)
                        return berth_error_setm(err, -r, "Cannot mount %s on '%s'", type, m->destination);
        }

        r = chase_in_root(root_fd, m->destination, chase, &target_fd);
        if (r == -ELOOP)
                return berth_error_set(err, ELOOP,
                                       "Mount destination '%s' is a symlink in the image, refusing",
                                       m->destination);
        if (r < 0)
                return berth_error_setm(err, -r, "Cannot resolve mount destination '%s' in the rootfs",
                                        m->destination);
        if (!o.bind && !(chase & CHASE_MKFILE)) {
                struct stat st;
                if (fstat(target_fd, &st) < 0 || !S_ISDIR(st.st_mode))
                        return berth_error_set(err, ENOTDIR, "Mount destination '%s' is not a directory",
                                               m->destination);
        }
        if (o.bind) {
                /* SECURITY: a bind never lands inside the container's procfs or sysfs (an image
                 * symlink "/data -> /proc/sys/kernel" would otherwise shadow kernel files, which
                 * runc refuses too). The spec's own API mounts sit on directories of the image. */
                struct statfs sfs;
                if (fstatfs(target_fd, &sfs) < 0)
                        return berth_error_setm(err, errno, "Cannot stat mount destination '%s'",
                                                m->destination);
                if (sfs.f_type == PROC_SUPER_MAGIC || sfs.f_type == SYSFS_MAGIC)
                        return berth_error_set(
                                err, EPERM,
                                "Bind mount destination '%s' is inside procfs or sysfs, refusing",
                                m->destination);
        }

        if (mount_move_onto(mnt_fd, target_fd) < 0)
                return berth_error_setm(err, errno, "Cannot attach mount on '%s'", m->destination);
        r = mount_verify_landed(root_fd, m->destination, mnt_fd);
        if (r < 0)
                return berth_error_setm(err, -r,
                                        "Mount on '%s' did not land on the destination inside the rootfs",
                                        m->destination);
        if (!o.bind && (streq(m->type, "cgroup") || streq(m->type, "cgroup2")) &&
            (r = cgroup_mount_populate(mnt_fd)) < 0)
                return berth_error_setm(err, -r, "Cannot mount the cgroup hierarchies on '%s'",
                                        m->destination);

        if (o.propagation) {
                struct mount_attr a = { .propagation = o.propagation };
                if (mount_setattr(mnt_fd, "", AT_EMPTY_PATH | (o.propagation_recursive ? AT_RECURSIVE : 0),
                                  &a, sizeof(a)) < 0)
                        return berth_error_setm(err, errno, "Mount '%s': cannot set propagation",
                                                m->destination);
        }
        return 0;
}

int rootfs_prepare(const Spec *spec, int *ret_root_fd, BerthError *err) {
        int fd;

        /* Nothing we mount from here on may propagate to the host, and pivot_root refuses a shared
         * parent. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return berth_error_setm(err, errno, "Cannot make the mount tree private");
        if (mount(spec->root_path, spec->root_path, NULL, MS_BIND | MS_REC, NULL) < 0)
                return berth_error_setm(err, errno, "Cannot bind the rootfs '%s'", spec->root_path);
        fd = open(spec->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return berth_error_setm(err, errno, "Cannot open the rootfs '%s'", spec->root_path);
        *ret_root_fd = fd;
        return 0;
}

static bool is_cgroup_mount(const SpecMount *m) {
        return m->type && (streq(m->type, "cgroup") || streq(m->type, "cgroup2"));
}

int mounts_apply(int root_fd, const Spec *spec, bool cgroup_mounts, BerthError *err) {
        for (size_t i = 0; i < spec->n_mounts; i++) {
                if (is_cgroup_mount(&spec->mounts[i]) != cgroup_mounts)
                        continue;
                int r = mount_one(root_fd, &spec->mounts[i], err);
                if (r < 0)
                        return r;
        }
        return 0;
}

int rootfs_pivot(int root_fd, BerthError *err) {
        if (fchdir(root_fd) < 0)
                return berth_error_setm(err, errno, "Cannot enter the rootfs");
        /* pivot_root(".", "."): the old root ends up stacked under the new one, and is detached at
         * once; no directory for it is needed in the image. */
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return berth_error_setm(err, errno, "pivot_root failed");
        if (umount2(".", MNT_DETACH) < 0)
                return berth_error_setm(err, errno, "Cannot detach the old root");
        if (chdir("/") < 0)
                return berth_error_setm(err, errno, "Cannot chdir to the new root");
        return 0;
}

static int open_policy_path(const char *path, int *ret_fd) {
        /* No symlink anywhere on the way: these paths are under /proc and /sys, where the kernel
         * places none that we mask, and an image could only have planted one to redirect us
         * (CVE-2025-31133 class). */
        struct stat st;
        int fd = openat2_fd(AT_FDCWD, path, O_PATH | O_NOFOLLOW | O_CLOEXEC,
                            RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
        if (fd < 0)
                return fd;
        /* O_NOFOLLOW|O_PATH opens a final symlink itself rather than failing: refuse it here. */
        if (fstat(fd, &st) < 0 || S_ISLNK(st.st_mode)) {
                safe_close(fd);
                return -ELOOP;
        }
        *ret_fd = fd;
        return 0;
}

/* Opens a path of maskedPaths/readonlyPaths for paths_mask()/paths_readonly(): 1 with *ret_fd, 0 if it
 * does not exist (nothing to do), or < 0 with err set; a symlink on the way is refused. What/what name
 * the list in messages. */
static int open_listed_path(const char *path, const char *What, const char *what, int *ret_fd,
                            BerthError *err) {
        int r;

        r = open_policy_path(path, ret_fd);
        if (r == -ENOENT)
                return 0;
        if (r == -ELOOP || r == -EXDEV)
                return berth_error_set(err, ELOOP, "%s path '%s' is or passes a symlink, refusing", What,
                                       path);
        if (r < 0)
                return berth_error_setm(err, -r, "Cannot open %s path '%s'", what, path);
        return 1;
}

int paths_mask(char **paths, BerthError *err) {
        _cleanup_close_ int null_fd = -EBADF;
        struct stat st;
        int r;

        STRV_FOREACH(p, paths) {
                _cleanup_close_ int fd = -EBADF, mnt_fd = -EBADF;

                r = open_listed_path(*p, "Masked", "masked", &fd, err);
                if (r < 0)
                        return r;
                if (r == 0)
                        continue;
                if (fstat(fd, &st) < 0)
                        return berth_error_setm(err, errno, "Cannot stat masked path '%s'", *p);

                if (S_ISDIR(st.st_mode)) {
                        r = mount_fs_detached("tmpfs", "tmpfs", "mode=0555",
                                              MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                                      MOUNT_ATTR_NOEXEC,
                                              &mnt_fd);
                        if (r < 0)
                                return berth_error_setm(err, -r, "Cannot create tmpfs for masked path '%s'",
                                                        *p);
                } else {
                        if (null_fd < 0) {
                                /* Our own /dev/null (devices.c bound the host's 1:3 there); checked
                                 * again, without following anything. */
                                r = open_policy_path("/dev/null", &null_fd);
                                if (r < 0)
                                        return berth_error_setm(err, -r,
                                                                "Cannot open /dev/null for masking");
                                if (fstat(null_fd, &st) < 0 || !S_ISCHR(st.st_mode) ||
                                    st.st_rdev != makedev(1, 3))
                                        return berth_error_set(err, EPERM,
                                                               "/dev/null is not the null device, refusing "
                                                               "to mask with it");
                        }
                        mnt_fd = open_tree(null_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
                        if (mnt_fd < 0)
                                return berth_error_setm(err, errno, "Cannot clone /dev/null for '%s'", *p);
                        struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                                            MOUNT_ATTR_NOEXEC };
                        if (mount_setattr(mnt_fd, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0)
                                return berth_error_setm(err, errno, "Cannot make the mask of '%s' read-only",
                                                        *p);
                }
                if (mount_move_onto(mnt_fd, fd) < 0)
                        return berth_error_setm(err, errno, "Cannot mask '%s'", *p);
        }
        return 0;
}

int paths_readonly(char **paths, BerthError *err) {
        int r;

        STRV_FOREACH(p, paths) {
                _cleanup_close_ int fd = -EBADF, mnt_fd = -EBADF;

                r = open_listed_path(*p, "Read-only", "read-only", &fd, err);
                if (r < 0)
                        return r;
                if (r == 0)
                        continue;
                mnt_fd = open_tree(fd, "",
                                   OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
                if (mnt_fd < 0)
                        return berth_error_setm(err, errno, "Cannot clone '%s'", *p);
                struct mount_attr a = {
                        .attr_set =
                                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                };
                if (mount_setattr(mnt_fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof(a)) < 0)
                        return berth_error_setm(err, errno, "Cannot make '%s' read-only", *p);
                if (mount_move_onto(mnt_fd, fd) < 0)
                        return berth_error_setm(err, errno, "Cannot mount '%s' read-only", *p);
        }
        return 0;
}

int rootfs_finish_readonly(const Spec *spec, BerthError *err) {
        struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY };

        if (!spec->root_readonly)
                return 0;
        /* Only the root mount itself: /dev, /proc, /run… keep their own flags. */
        if (mount_setattr(AT_FDCWD, "/", 0, &a, sizeof(a)) < 0)
                return berth_error_setm(err, errno, "Cannot make the rootfs read-only");
        return 0;
}
