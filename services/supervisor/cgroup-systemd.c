/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "cgroup-devices-bpf.h"
#include "cgroup.h"

/* A transient scope per container, created by systemd (PID 1) on our request: StartTransientUnit with
 * PIDs=[init] and Delegate=yes, so that systemd never touches the subtree and stopping or restarting
 * berth-supervisor.service takes no container with it (it is not in our unit's cgroup). Limits are
 * unit properties, so systemd writes them for whatever layout it runs (v1, hybrid, v2). */

#define SCOPE_JOB_TIMEOUT_USEC (10ULL * 1000000ULL)

typedef struct JobWait {
        const char *job;
        bool done;
        char result[64];
} JobWait;

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        JobWait *w = userdata;
        const char *path = NULL, *unit = NULL, *result = NULL;
        uint32_t id;

        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        if (path && streq(path, w->job)) {
                w->done = true;
                snprintf(w->result, sizeof(w->result), "%s", strna(result));
        }
        return 0;
}

static int systemd_create(Cgroup *cg, const Spec *spec, BerthError *err) {
        /* The scope needs the pid: everything happens in enter(). */
        return 0;
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static int find_own_cgroup(Cgroup *cg, pid_t pid) {
        _cleanup_free_ char *line = NULL;
        char p[64];
        size_t n = 0;
        FILE *f;

        snprintf(p, sizeof(p), "/proc/%d/cgroup", (int) pid);
        f = fopen(p, "re");
        if (!f)
                return negative_errno();
        while (getline(&line, &n, f) > 0) {
                line[strcspn(line, "\n")] = '\0';
                char *a = strchr(line, ':');
                char *b = a ? strchr(a + 1, ':') : NULL;
                if (!b)
                        continue;
                *b = '\0';
                const char *ctrls = a + 1, *path = b + 1;
                if (cg->layout == CGROUP_LAYOUT_V2 && *ctrls == '\0') {
                        snprintf(cg->path, sizeof(cg->path), "%s", path + 1);
                        if (!snprintf_ok(cg->oom_file, "/sys/fs/cgroup%s/memory.events", path))
                                break;
                } else if (cg->layout != CGROUP_LAYOUT_V2 && streq(ctrls, "memory")) {
                        snprintf(cg->path, sizeof(cg->path), "%s", path + 1);
                        if (!snprintf_ok(cg->oom_file, "/sys/fs/cgroup/memory%s/memory.oom_control", path))
                                break;
                }
        }
        fclose(f);
        return 0;
}

static int systemd_enter(Cgroup *cg, const Spec *spec, pid_t pid, BerthError *err) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        const SpecResources *res = &spec->resources;
        JobWait w = {};
        const char *job;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return berth_error_setm(err, -r, "Cannot connect to the system bus for systemd");
        r = sd_bus_match_signal(bus, NULL, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                "org.freedesktop.systemd1.Manager", "JobRemoved", on_job_removed, &w);
        if (r < 0)
                return berth_error_setm(err, -r, "Cannot watch systemd jobs");

        r = sd_bus_message_new_method_call(bus, &m, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                           "org.freedesktop.systemd1.Manager", "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", cg->unit, "fail");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sv)");
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)(sv)(sv)(sv)(sv)", "Description", "s", "berth container",
                                          "Slice", "s", cg->slice, "Delegate", "b", 1, "PIDs", "au", 1,
                                          (uint32_t) pid, "DefaultDependencies", "b", 0);
        if (r >= 0 && res->memory_limit > 0)
                r = sd_bus_message_append(m, "(sv)(sv)", "MemoryMax", "t", (uint64_t) res->memory_limit,
                                          "MemorySwapMax", "t", (uint64_t) 0);
        if (r >= 0 && res->pids_limit > 0)
                r = sd_bus_message_append(m, "(sv)", "TasksMax", "t", (uint64_t) res->pids_limit);
        if (r >= 0 && res->cpu_quota > 0)
                r = sd_bus_message_append(m, "(sv)", "CPUQuotaPerSecUSec", "t",
                                          (uint64_t) res->cpu_quota * 1000000ULL /
                                                  (res->cpu_period ?: 100000));
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r < 0)
                return berth_error_setm(err, -r, "Cannot build the StartTransientUnit call");

        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0) {
                berth_error_set(err, -r, "systemd refused scope '%s': %s", cg->unit,
                                error.message ?: strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        r = sd_bus_message_read(reply, "o", &job);
        if (r < 0)
                return berth_error_setm(err, -r, "Bad reply from systemd");
        w.job = job;

        uint64_t deadline = now_usec() + SCOPE_JOB_TIMEOUT_USEC;
        while (!w.done) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        return berth_error_setm(err, -r, "Lost systemd while waiting for scope '%s'",
                                                cg->unit);
                if (r > 0)
                        continue;
                uint64_t now = now_usec();
                if (now >= deadline)
                        return berth_error_set(err, ETIMEDOUT, "systemd did not start scope '%s'", cg->unit);
                r = sd_bus_wait(bus, deadline - now);
                if (r < 0)
                        return berth_error_setm(err, -r, "Lost systemd while waiting for scope '%s'",
                                                cg->unit);
        }
        if (!streq(w.result, "done"))
                return berth_error_set(err, EIO, "systemd scope '%s' failed: %s", cg->unit, w.result);
        cg->created = true;
        (void) find_own_cgroup(cg, pid);
        /* Delegate=yes: the scope's cgroup is ours to filter. On v2 the device rules are an eBPF program
         * (DeviceAllow= could not express the spec's order of rules); the init waits at sync point 1 and
         * has opened no device yet. Not on v1 here: this backend serves runc-style specs (berth-runspec);
         * the supervisor's containers use container-scope.c and the v1/v2 backends, which apply them. */
        if (cg->layout == CGROUP_LAYOUT_V2 && cg->path[0]) {
                const SpecDeviceRule *rules;
                size_t n_rules;
                char dir[PATH_MAX];
                if (!snprintf_ok(dir, "/sys/fs/cgroup/%s", cg->path))
                        return berth_error_set(err, ENAMETOOLONG, "cgroup path too long");
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

int cgroup_systemd_stop_unit(const char *unit) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "StopUnit", &error, NULL, "ss", unit,
                               "replace");
        /* A unit systemd no longer knows (collected, never loaded) is as removed as it gets. */
        if (r == -ENOENT || sd_bus_error_has_names(&error, "org.freedesktop.systemd1.NoSuchUnit",
                                                   "org.freedesktop.systemd1.NotLoaded"))
                r = 0;
        sd_bus_error_free(&error);
        return r;
}

static int systemd_destroy(Cgroup *cg) {
        /* A scope whose processes are gone is collected by systemd; stopping it covers the rest. */
        return cgroup_systemd_stop_unit(cg->unit);
}

const CgroupOps cgroup_ops_systemd = {
        .name = "systemd",
        .create = systemd_create,
        .enter = systemd_enter,
        .destroy = systemd_destroy,
};
