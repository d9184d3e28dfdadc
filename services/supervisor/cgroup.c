/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "cgroup.h"
#include "fs-util.h"
#include "mount-api.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

int cgroup_detect_layout(CgroupLayout *ret) {
        /* Cached: the layout is a property of the boot, and the container's init asks again after its
         * pivot_root, where /sys/fs/cgroup is the container's (engine_create() asks before the clone). */
        static int cached = -1;
        struct statfs fs;

        if (cached >= 0) {
                *ret = (CgroupLayout) cached;
                return 0;
        }
        if (statfs(CGROUP_ROOT, &fs) < 0)
                return negative_errno();
        if (fs.f_type == CGROUP2_SUPER_MAGIC)
                *ret = CGROUP_LAYOUT_V2;
        else if (fs.f_type != TMPFS_MAGIC)
                return -ENOMEDIUM;
        else if (statfs(CGROUP_ROOT "/unified", &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC)
                *ret = CGROUP_LAYOUT_HYBRID;
        else
                *ret = CGROUP_LAYOUT_V1;
        cached = (int) *ret;
        return 0;
}

const char *cgroup_layout_name(CgroupLayout l) {
        switch (l) {
        case CGROUP_LAYOUT_V1:
                return "v1";
        case CGROUP_LAYOUT_V2:
                return "v2";
        case CGROUP_LAYOUT_HYBRID:
                return "hybrid";
        }
        return "unknown";
}

static bool systemd_is_pid1(void) {
        /* sd_booted()'s test: systemd creates this directory when it is the init system. */
        struct stat st;
        return lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

static bool path_ok(const char *p) {
        if (strstr(p, ".."))
                return false;
        for (const char *c = p; *c; c++)
                if ((unsigned char) *c < 0x20 || *c == '\\')
                        return false;
        return true;
}

int cgroup_new(const Spec *spec, Cgroup **ret, BerthError *err) {
        _cleanup_free_ Cgroup *cg = NULL;
        int r;

        *ret = NULL;
        if (!spec->cgroups_path)
                return 0;
        if (!path_ok(spec->cgroups_path))
                return berth_error_set(err, EINVAL, "Invalid cgroupsPath '%s'", spec->cgroups_path);

        cg = calloc(1, sizeof(Cgroup));
        if (!cg)
                return berth_error_set(err, ENOMEM, "Out of memory");
        r = cgroup_detect_layout(&cg->layout);
        if (r < 0)
                return berth_error_setm(err, -r, "Cannot detect the cgroup layout under " CGROUP_ROOT);

        const char *colon = strchr(spec->cgroups_path, ':');
        if (colon) {
                /* slice:prefix:name, as runc and podman write it for systemd. */
                char slice[256], prefix[256], name[256];
                if (sscanf(spec->cgroups_path, "%255[^:]:%255[^:]:%255s", slice, prefix, name) != 3 ||
                    strchr(slice, '/') || strchr(prefix, '/') || strchr(name, '/'))
                        return berth_error_set(err, EINVAL,
                                               "Invalid systemd cgroupsPath '%s' (want slice:prefix:name)",
                                               spec->cgroups_path);
                if (!systemd_is_pid1())
                        return berth_error_set(
                                err, EOPNOTSUPP,
                                "cgroupsPath '%s' names a systemd scope, but systemd is not PID 1",
                                spec->cgroups_path);
                snprintf(cg->slice, sizeof(cg->slice), "%s", slice);
                if (!snprintf_ok(cg->unit, "%s-%s.scope", prefix, name))
                        return berth_error_set(err, ENAMETOOLONG, "systemd unit name too long");
                cg->ops = &cgroup_ops_systemd;
        } else {
                const char *p = spec->cgroups_path;
                while (*p == '/')
                        p++;
                if (isempty(p))
                        return berth_error_set(err, EINVAL, "cgroupsPath must not be the root cgroup");
                if (!snprintf_ok(cg->path, "%s", p))
                        return berth_error_set(err, ENAMETOOLONG, "cgroupsPath too long");
                cg->ops = cg->layout == CGROUP_LAYOUT_V2 ? &cgroup_ops_v2 : &cgroup_ops_v1;
        }
        *ret = TAKE_PTR(cg);
        return 0;
}

void cgroup_free(Cgroup *cg) {
        if (!cg)
                return;
        for (size_t i = 0; i < cg->n_hierarchies; i++)
                free(cg->hierarchies[i]);
        free(cg);
}

void cgroup_device_rules(const Spec *spec, const SpecDeviceRule **ret, size_t *ret_n) {
        static const SpecDeviceRule defaults[] = {
                { .allow = false, .type = 'a', .major = -1, .minor = -1, .access = SPEC_DEVICE_ALL },
                { .allow = true, .type = 'c', .major = -1, .minor = -1, .access = SPEC_DEVICE_MKNOD },
                { .allow = true, .type = 'b', .major = -1, .minor = -1, .access = SPEC_DEVICE_MKNOD },
                { .allow = true, .type = 'c', .major = 1, .minor = 3, .access = SPEC_DEVICE_ALL },
                { .allow = true, .type = 'c', .major = 1, .minor = 5, .access = SPEC_DEVICE_ALL },
                { .allow = true, .type = 'c', .major = 1, .minor = 7, .access = SPEC_DEVICE_ALL },
                { .allow = true, .type = 'c', .major = 1, .minor = 8, .access = SPEC_DEVICE_ALL },
                { .allow = true, .type = 'c', .major = 1, .minor = 9, .access = SPEC_DEVICE_ALL },
                { .allow = true, .type = 'c', .major = 5, .minor = 0, .access = SPEC_DEVICE_ALL },
                { .allow = true, .type = 'c', .major = 5, .minor = 1, .access = SPEC_DEVICE_ALL },
                { .allow = true, .type = 'c', .major = 5, .minor = 2, .access = SPEC_DEVICE_ALL },
                { .allow = true, .type = 'c', .major = 136, .minor = -1, .access = SPEC_DEVICE_ALL },
        };

        /* SECURITY: a spec that says nothing gets the default allow-list, never every device. */
        if (spec->resources.devices) {
                *ret = spec->resources.devices;
                *ret_n = spec->resources.n_devices;
        } else {
                *ret = defaults;
                *ret_n = ELEMENTSOF(defaults);
        }
}

int cgroup_write(const char *dir, const char *file, const char *value) {
        char path[PATH_MAX];
        int fd, r;

        if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int) sizeof(path))
                return -ENAMETOOLONG;
        fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        r = loop_write(fd, value, strlen(value));
        safe_close(fd);
        return r;
}

int cgroup_mkdir_p(const char *root, const char *path) {
        char buf[PATH_MAX];

        if (snprintf(buf, sizeof(buf), "%s/%s", root, path) >= (int) sizeof(buf))
                return -ENAMETOOLONG;
        for (char *p = buf + strlen(root) + 1;; p++) {
                if (*p == '/' || *p == '\0') {
                        char c = *p;
                        *p = '\0';
                        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                                return negative_errno();
                        *p = c;
                        if (c == '\0')
                                break;
                }
        }
        return 0;
}

int cgroup_rmdir_p(const char *root, const char *path) {
        char buf[PATH_MAX];

        /* Only the leaf: the parents ("berth") are shared with the other containers. */
        if (snprintf(buf, sizeof(buf), "%s/%s", root, path) >= (int) sizeof(buf))
                return -ENAMETOOLONG;
        if (rmdir(buf) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}

/* The host's v1 (and hybrid unified) hierarchies as the container's /sys/fs/cgroup shows them: read from
 * /proc/self/mountinfo in the caller (the init has pivoted away from it by the time it mounts). */
typedef struct CgroupMountPoint {
        char name[64];  /* "memory", "cpu,cpuacct", "systemd", "unified" */
        char opts[256]; /* fsconfig flags: "memory", "cpu,cpuacct", "name=systemd"; "" for cgroup2 */
        bool v2;
} CgroupMountPoint;

static CgroupMountPoint mount_points[CGROUP_V1_HIERARCHIES_MAX];
static int n_mount_points = -1;

static bool is_controller_option(const char *o) {
        static const char *const not_controllers[] = {
                "rw",        "ro",    "relatime",       "noatime",  "nosuid",         "nodev",
                "noexec",    "xattr", "clone_children", "noprefix", "cpuset_v2_mode", "favordynmods",
                "nsdelegate"
        };
        for (size_t i = 0; i < ELEMENTSOF(not_controllers); i++)
                if (streq(o, not_controllers[i]))
                        return false;
        return strncmp(o, "release_agent=", 14) != 0;
}

int cgroup_prepare_mounts(void) {
        _cleanup_free_ char *line = NULL;
        size_t n = 0;
        FILE *f;

        if (n_mount_points >= 0)
                return 0;
        f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return negative_errno();
        n_mount_points = 0;
        while (getline(&line, &n, f) > 0 && n_mount_points < CGROUP_V1_HIERARCHIES_MAX) {
                char mp[PATH_MAX], fstype[64], superopts[1024];
                const char *sep = strstr(line, " - ");
                if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 ||
                    sscanf(sep + 3, "%63s %*s %1023s", fstype, superopts) != 2)
                        continue;
                if (strncmp(mp, CGROUP_ROOT "/", strlen(CGROUP_ROOT) + 1) != 0 ||
                    strchr(mp + strlen(CGROUP_ROOT) + 1, '/') || strchr(mp, '\\'))
                        continue;
                CgroupMountPoint *c = &mount_points[n_mount_points];
                *c = (CgroupMountPoint){};
                if (!snprintf_ok(c->name, "%s", mp + strlen(CGROUP_ROOT) + 1))
                        continue;
                if (streq(fstype, "cgroup2"))
                        c->v2 = true;
                else if (streq(fstype, "cgroup")) {
                        size_t len = 0;
                        for (char *save = NULL, *o = strtok_r(superopts, ",", &save); o;
                             o = strtok_r(NULL, ",", &save)) {
                                if (!is_controller_option(o))
                                        continue;
                                size_t l = strlen(o);
                                if (len + l + 2 > sizeof(c->opts))
                                        break;
                                if (len > 0)
                                        c->opts[len++] = ',';
                                memcpy(c->opts + len, o, l + 1);
                                len += l;
                        }
                        if (len == 0)
                                continue;
                } else
                        continue;
                n_mount_points++;
        }
        fclose(f);
        return 0;
}

int cgroup_mount_detached(uint64_t attr, int *ret_fd) {
        CgroupLayout layout;
        int r = cgroup_detect_layout(&layout);

        if (r < 0)
                return r;
        attr |= MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        if (layout == CGROUP_LAYOUT_V2)
                return mount_fs_detached("cgroup2", "cgroup2", NULL, attr | MOUNT_ATTR_RDONLY, ret_fd);
        /* v1/hybrid: a tmpfs, read-only only once cgroup_mount_populate() filled it */
        return mount_fs_detached("tmpfs", "cgroup", "mode=0755", attr & ~(uint64_t) MOUNT_ATTR_RDONLY,
                                 ret_fd);
}

int cgroup_mount_populate(int mnt_fd) {
        CgroupLayout layout;
        int r = cgroup_detect_layout(&layout);

        if (r < 0)
                return r;
        if (layout == CGROUP_LAYOUT_V2)
                return 0;
        /* Each hierarchy mounted anew inside the container's cgroup namespace: its root is the
         * container's own cgroup (no release_agent there: CVE-2022-0492), and read-only. */
        for (int i = 0; i < n_mount_points; i++) {
                const CgroupMountPoint *c = &mount_points[i];
                _cleanup_close_ int target = -EBADF, m = -EBADF;

                if (mkdirat(mnt_fd, c->name, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
                target = openat(mnt_fd, c->name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (target < 0)
                        return negative_errno();
                r = mount_fs_detached(
                        c->v2 ? "cgroup2" : "cgroup", "cgroup", c->opts,
                        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, &m);
                if (r < 0)
                        return r;
                if (mount_move_onto(m, target) < 0)
                        return negative_errno();
        }
        struct mount_attr a = { .attr_set = MOUNT_ATTR_RDONLY };
        if (mount_setattr(mnt_fd, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0)
                return negative_errno();
        return 0;
}
