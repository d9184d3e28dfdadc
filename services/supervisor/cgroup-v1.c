/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "fs-util.h"

/* cgroup v1, and the hybrid layout (v1 controllers + cgroup2 at /sys/fs/cgroup/unified). The container
 * joins every mounted v1 hierarchy (as runc does; a hierarchy left out would leave the container in the
 * caller's group there) and, on hybrid, the unified one too. */

static int add_hierarchy(Cgroup *cg, const char *mp) {
        for (size_t i = 0; i < cg->n_hierarchies; i++)
                if (streq(cg->hierarchies[i], mp))
                        return 0;
        if (cg->n_hierarchies >= CGROUP_V1_HIERARCHIES_MAX)
                return -E2BIG;
        cg->hierarchies[cg->n_hierarchies] = strdup(mp);
        if (!cg->hierarchies[cg->n_hierarchies])
                return -ENOMEM;
        cg->n_hierarchies++;
        return 0;
}

static int list_hierarchies(Cgroup *cg) {
        _cleanup_free_ char *line = NULL;
        size_t n = 0;
        FILE *f;
        int r = 0;

        f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return negative_errno();
        while (getline(&line, &n, f) > 0) {
                /* "id parent maj:min root mountpoint options [optional…] - fstype source superopts" */
                char mp[PATH_MAX], fstype[64];
                const char *sep = strstr(line, " - ");
                if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 ||
                    sscanf(sep + 3, "%63s", fstype) != 1)
                        continue;
                if (strncmp(mp, "/sys/fs/cgroup/", 15) != 0 || strchr(mp, '\\'))
                        continue; /* a cgroup mounted elsewhere (e.g. in a container we made) is not ours */
                if (streq(fstype, "cgroup") ||
                    (streq(fstype, "cgroup2") && cg->layout == CGROUP_LAYOUT_HYBRID))
                        if ((r = add_hierarchy(cg, mp)) < 0)
                                break;
        }
        fclose(f);
        if (r == 0 && cg->n_hierarchies == 0)
                r = -ENOMEDIUM;
        return r;
}

static bool is_hierarchy(const char *mp, const char *controller) {
        const char *base = strrchr(mp, '/');
        base = base ? base + 1 : mp;
        /* "cpu,cpuacct" style names list several controllers */
        size_t l = strlen(controller);
        for (const char *p = base; (p = strstr(p, controller)); p += l)
                if ((p == base || p[-1] == ',') && (p[l] == '\0' || p[l] == ','))
                        return true;
        return false;
}

static int cpuset_init(const char *mp, const char *path) {
        /* A new v1 cpuset group starts with empty cpus/mems and refuses tasks: copy them down from the
         * parent at each level that is still empty. */
        char dir[PATH_MAX], parent[PATH_MAX], buf[4096];
        size_t len = strlen(path);

        for (size_t i = 0; i <= len; i++) {
                if (path[i] != '/' && path[i] != '\0')
                        continue;
                if (!snprintf_ok(dir, "%s/%.*s", mp, (int) i, path))
                        return -ENAMETOOLONG;
                if (!snprintf_ok(parent, "%s", dir))
                        return -ENAMETOOLONG;
                *strrchr(parent, '/') = '\0';
                for (int k = 0; k < 2; k++) {
                        const char *file = k == 0 ? "cpuset.cpus" : "cpuset.mems";
                        char p[PATH_MAX];
                        int fd;
                        ssize_t n;

                        if (!snprintf_ok(p, "%s/%s", dir, file))
                                return -ENAMETOOLONG;
                        fd = open(p, O_RDONLY | O_CLOEXEC);
                        if (fd < 0)
                                return negative_errno();
                        n = read(fd, buf, sizeof(buf) - 1);
                        safe_close(fd);
                        if (n > 1)
                                continue;
                        if (!snprintf_ok(p, "%s/%s", parent, file))
                                return -ENAMETOOLONG;
                        fd = open(p, O_RDONLY | O_CLOEXEC);
                        if (fd < 0)
                                return negative_errno();
                        n = read(fd, buf, sizeof(buf) - 1);
                        safe_close(fd);
                        if (n < 0)
                                return negative_errno();
                        buf[n] = '\0';
                        int r = cgroup_write(dir, file, buf);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* One rule as the v1 devices controller reads it: "c 1:3 rwm", "a *:* m". */
static int device_rule_write(const char *dir, const SpecDeviceRule *d) {
        char v[96], major[24], minor[24], access[4];
        size_t k = 0;

        if (d->major >= 0)
                snprintf(major, sizeof(major), "%" PRIi64, d->major);
        else
                snprintf(major, sizeof(major), "*");
        if (d->minor >= 0)
                snprintf(minor, sizeof(minor), "%" PRIi64, d->minor);
        else
                snprintf(minor, sizeof(minor), "*");
        if (d->access & SPEC_DEVICE_READ)
                access[k++] = 'r';
        if (d->access & SPEC_DEVICE_WRITE)
                access[k++] = 'w';
        if (d->access & SPEC_DEVICE_MKNOD)
                access[k++] = 'm';
        access[k] = '\0';
        if (k == 0)
                return 0;
        snprintf(v, sizeof(v), "%c %s:%s %s", d->type, major, minor, access);
        return cgroup_write(dir, d->allow ? "devices.allow" : "devices.deny", v);
}

static int v1_apply(Cgroup *cg, const char *mp, const Spec *spec, BerthError *err) {
        const SpecResources *res = &spec->resources;
        char dir[PATH_MAX], v[64];
        int r;

        if (!snprintf_ok(dir, "%s/%s", mp, cg->path))
                return berth_error_set(err, ENAMETOOLONG, "cgroup path too long");
        if (is_hierarchy(mp, "memory")) {
                if (!snprintf_ok(cg->oom_file, "%s/memory.oom_control", dir))
                        return berth_error_set(err, ENAMETOOLONG, "cgroup path too long");
                if (res->memory_limit > 0) {
                        snprintf(v, sizeof(v), "%" PRIi64, res->memory_limit);
                        r = cgroup_write(dir, "memory.limit_in_bytes", v);
                        if (r < 0)
                                return berth_error_setm(err, -r, "Cannot set memory.limit_in_bytes in '%s'",
                                                        dir);
                        /* memsw = memory + swap; by default no swap beyond the limit. */
                        int64_t sw = res->memory_swap > 0 ? res->memory_swap : res->memory_limit;
                        snprintf(v, sizeof(v), "%" PRIi64, res->memory_swap == -1 ? (int64_t) -1 : sw);
                        r = cgroup_write(dir, "memory.memsw.limit_in_bytes", v);
                        if (r < 0 && r != -ENOENT)
                                return berth_error_setm(
                                        err, -r, "Cannot set memory.memsw.limit_in_bytes in '%s'", dir);
                }
        }
        if (is_hierarchy(mp, "cpu") && res->cpu_quota > 0) {
                snprintf(v, sizeof(v), "%" PRIu64, res->cpu_period ?: 100000);
                r = cgroup_write(dir, "cpu.cfs_period_us", v);
                if (r >= 0) {
                        snprintf(v, sizeof(v), "%" PRIi64, res->cpu_quota);
                        r = cgroup_write(dir, "cpu.cfs_quota_us", v);
                }
                if (r < 0)
                        return berth_error_setm(err, -r, "Cannot set the CPU quota in '%s'", dir);
        }
        if (is_hierarchy(mp, "pids") && res->pids_limit != 0) {
                if (res->pids_limit > 0)
                        snprintf(v, sizeof(v), "%" PRIi64, res->pids_limit);
                else
                        snprintf(v, sizeof(v), "max");
                r = cgroup_write(dir, "pids.max", v);
                if (r < 0)
                        return berth_error_setm(err, -r, "Cannot set pids.max in '%s'", dir);
        }
        if (is_hierarchy(mp, "devices")) {
                /* SECURITY: the spec's rules in order (by default: deny every device but the defaults
                 * the engine binds into /dev), as the v2 eBPF filter applies them. */
                const SpecDeviceRule *rules;
                size_t n_rules;
                cgroup_device_rules(spec, &rules, &n_rules);
                r = 0;
                for (size_t i = 0; r >= 0 && i < n_rules; i++)
                        r = device_rule_write(dir, &rules[i]);
                if (r < 0)
                        return berth_error_setm(err, -r, "Cannot set the device rules in '%s'", dir);
        }
        if (is_hierarchy(mp, "cpuset") && (r = cpuset_init(mp, cg->path)) < 0)
                return berth_error_setm(err, -r, "Cannot initialise cpuset '%s'", dir);
        return 0;
}

static int v1_destroy(Cgroup *cg) {
        int ret = 0;

        if (cg->n_hierarchies == 0 && (ret = list_hierarchies(cg)) < 0)
                return ret;
        for (size_t i = 0; i < cg->n_hierarchies; i++) {
                int r = cgroup_rmdir_p(cg->hierarchies[i], cg->path);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

static int v1_create(Cgroup *cg, const Spec *spec, BerthError *err) {
        int r = list_hierarchies(cg);

        if (r < 0)
                return berth_error_setm(err, -r, "Cannot list the cgroup v1 hierarchies");
        for (size_t i = 0; i < cg->n_hierarchies; i++) {
                char dir[PATH_MAX];
                struct stat st;

                if (!snprintf_ok(dir, "%s/%s", cg->hierarchies[i], cg->path))
                        return berth_error_set(err, ENAMETOOLONG, "cgroup path too long");
                if (i == 0 && stat(dir, &st) == 0)
                        return berth_error_set(err, EEXIST, "cgroup '%s' exists already", dir);
                r = cgroup_mkdir_p(cg->hierarchies[i], cg->path);
                if (r < 0) {
                        (void) v1_destroy(cg);
                        return berth_error_setm(err, -r, "Cannot create cgroup '%s'", dir);
                }
                cg->created = true;
                r = v1_apply(cg, cg->hierarchies[i], spec, err);
                if (r < 0) {
                        (void) v1_destroy(cg);
                        return r;
                }
        }
        return 0;
}

static int v1_enter(Cgroup *cg, const Spec *spec, pid_t pid, BerthError *err) {
        char v[32], dir[PATH_MAX];

        snprintf(v, sizeof(v), "%d", (int) pid);
        for (size_t i = 0; i < cg->n_hierarchies; i++) {
                if (!snprintf_ok(dir, "%s/%s", cg->hierarchies[i], cg->path))
                        return berth_error_set(err, ENAMETOOLONG, "cgroup path too long");
                int r = cgroup_write(dir, "cgroup.procs", v);
                if (r < 0)
                        return berth_error_setm(err, -r, "Cannot move the container into '%s'", dir);
        }
        return 0;
}

const CgroupOps cgroup_ops_v1 = {
        .name = "v1",
        .create = v1_create,
        .enter = v1_enter,
        .destroy = v1_destroy,
};
