/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cgroup-devices-bpf.h"
#include "cgroup.h"

#define V2_ROOT "/sys/fs/cgroup"

static int enable_controllers(const char *path) {
        /* Each ancestor hands memory, cpu and pids down to its children ("+x" in subtree_control).
         * A controller the kernel lacks is skipped; the limit that needs it fails later, loudly. */
        char dir[PATH_MAX];
        size_t len = strlen(path);

        for (size_t i = 0; i <= len; i++) {
                if (i != 0 && path[i] != '/' && path[i] != '\0')
                        continue;
                if (path[i] == '\0')
                        break; /* not in the leaf: it holds the process */
                if (!snprintf_ok(dir, V2_ROOT "/%.*s", (int) i, path))
                        return -ENAMETOOLONG;
                (void) cgroup_write(dir, "cgroup.subtree_control", "+memory");
                (void) cgroup_write(dir, "cgroup.subtree_control", "+pids");
                (void) cgroup_write(dir, "cgroup.subtree_control", "+cpu");
        }
        return 0;
}

/* A limit whose controller this hierarchy does not hand down (e.g. a hybrid host's unified hierarchy, or
 * a container manager's that kept it) fails with the controller named, never silently. */
static int require_controller(const char *dir, const char *controller, BerthError *err) {
        char path[PATH_MAX], buf[512];
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        if (!snprintf_ok(path, "%s/cgroup.controllers", dir))
                return berth_error_set(err, ENAMETOOLONG, "cgroup path too long");
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return berth_error_setm(err, errno, "Cannot read '%s'", path);
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return berth_error_setm(err, errno, "Cannot read '%s'", path);
        buf[n] = '\0';
        for (char *save = NULL, *w = strtok_r(buf, " \n", &save); w; w = strtok_r(NULL, " \n", &save))
                if (streq(w, controller))
                        return 0;
        return berth_error_set(err, EOPNOTSUPP,
                               "The cgroup v2 '%s' controller is not available to containers on this host "
                               "(bound to a cgroup v1 hierarchy, or not delegated): cannot apply the limit",
                               controller);
}

static int v2_create(Cgroup *cg, const Spec *spec, BerthError *err) {
        const SpecResources *res = &spec->resources;
        char dir[PATH_MAX], v[64];
        struct stat st;
        int r;

        if (!snprintf_ok(dir, V2_ROOT "/%s", cg->path))
                return berth_error_set(err, ENAMETOOLONG, "cgroup path too long");
        if (stat(dir, &st) == 0)
                return berth_error_set(err, EEXIST, "cgroup '%s' exists already", dir);
        r = cgroup_mkdir_p(V2_ROOT, cg->path);
        if (r < 0)
                return berth_error_setm(err, -r, "Cannot create cgroup '%s'", dir);
        cg->created = true;
        (void) enable_controllers(cg->path);
        if (!snprintf_ok(cg->oom_file, "%s/memory.events", dir))
                return berth_error_set(err, ENAMETOOLONG, "cgroup path too long");

        if (res->memory_limit > 0) {
                if ((r = require_controller(dir, "memory", err)) < 0)
                        return r;
                snprintf(v, sizeof(v), "%" PRIi64, res->memory_limit);
                if ((r = cgroup_write(dir, "memory.max", v)) < 0)
                        return berth_error_setm(err, -r, "Cannot set memory.max in '%s'", dir);
                int64_t sw = res->memory_swap > 0 ? res->memory_swap - res->memory_limit : 0;
                if (res->memory_swap == -1)
                        snprintf(v, sizeof(v), "max");
                else
                        snprintf(v, sizeof(v), "%" PRIi64, sw > 0 ? sw : 0);
                if ((r = cgroup_write(dir, "memory.swap.max", v)) < 0 && r != -ENOENT)
                        return berth_error_setm(err, -r, "Cannot set memory.swap.max in '%s'", dir);
        }
        if (res->cpu_quota > 0) {
                if ((r = require_controller(dir, "cpu", err)) < 0)
                        return r;
                snprintf(v, sizeof(v), "%" PRIi64 " %" PRIu64, res->cpu_quota, res->cpu_period ?: 100000);
                if ((r = cgroup_write(dir, "cpu.max", v)) < 0)
                        return berth_error_setm(err, -r, "Cannot set cpu.max in '%s'", dir);
        }
        if (res->pids_limit != 0) {
                if ((r = require_controller(dir, "pids", err)) < 0)
                        return r;
                if (res->pids_limit > 0)
                        snprintf(v, sizeof(v), "%" PRIi64, res->pids_limit);
                else
                        snprintf(v, sizeof(v), "max");
                if ((r = cgroup_write(dir, "pids.max", v)) < 0)
                        return berth_error_setm(err, -r, "Cannot set pids.max in '%s'", dir);
        }
        /* Devices on v2: an eBPF program (cgroup-devices-bpf.c) from the spec's rules. */
        {
                const SpecDeviceRule *rules;
                size_t n_rules;
                _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return berth_error_setm(err, errno, "Cannot open cgroup '%s'", dir);
                cgroup_device_rules(spec, &rules, &n_rules);
                r = cgroup_devices_bpf_apply(fd, rules, n_rules, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int v2_enter(Cgroup *cg, const Spec *spec, pid_t pid, BerthError *err) {
        char dir[PATH_MAX], v[32];
        int r;

        if (!snprintf_ok(dir, V2_ROOT "/%s", cg->path))
                return berth_error_set(err, ENAMETOOLONG, "cgroup path too long");
        snprintf(v, sizeof(v), "%d", (int) pid);
        if ((r = cgroup_write(dir, "cgroup.procs", v)) < 0)
                return berth_error_setm(err, -r, "Cannot move the container into '%s'", dir);
        return 0;
}

static int v2_destroy(Cgroup *cg) {
        return cgroup_rmdir_p(V2_ROOT, cg->path);
}

const CgroupOps cgroup_ops_v2 = {
        .name = "v2",
        .create = v2_create,
        .enter = v2_enter,
        .destroy = v2_destroy,
};
