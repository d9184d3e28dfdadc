/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "container-scope.h"
#include "fs-util.h"
#include "macro.h"

#define SCOPE_TIMEOUT_USEC (10ULL * 1000000ULL)

bool container_scope_wanted(void) {
        struct stat st;
        return lstat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode);
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* JobRemoved(u id, o job, s unit, s result): systemd sends it to the client that asked for the job. Matched
 * by unit name, so that it counts also when it overtakes the method reply. */
static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        ContainerScope *s = userdata;
        const char *job = NULL, *unit = NULL, *result = NULL;
        uint32_t id;

        if (sd_bus_message_read(m, "uoss", &id, &job, &unit, &result) < 0 || !unit || !streq(unit, s->unit))
                return 0;
        s->job_done = true;
        snprintf(s->job_result, sizeof(s->job_result), "%s", strna(result));
        return 0;
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        ContainerScope *s = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);

        s->replied = true;
        if (e) {
                s->call_error = sd_bus_error_get_errno(e) ?: EIO;
                snprintf(s->error_message, sizeof(s->error_message), "%s", strna(e->message));
        }
        return 0;
}

int container_scope_begin(ContainerScope *s, const char *id, const char *description, BerthError *err) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        *s = (ContainerScope){};
        if (!snprintf_ok(s->unit, "berth-%s.scope", id))
                return berth_error_set(err, ENAMETOOLONG, "Container id too long for a unit name");
        r = sd_bus_open_system(&s->bus);
        if (r < 0)
                return berth_error_setm(err, -r, "Cannot connect to the system bus to ask systemd for %s",
                                        s->unit);
        /* Installed by the bus daemon before it routes the call below: no JobRemoved can be missed. */
        r = sd_bus_match_signal_async(s->bus, NULL, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                      "org.freedesktop.systemd1.Manager", "JobRemoved", on_job_removed, NULL,
                                      s);
        if (r < 0)
                return berth_error_setm(err, -r, "Cannot watch systemd's jobs");

        r = sd_bus_message_new_method_call(s->bus, &m, "org.freedesktop.systemd1",
                                           "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                                           "StartTransientUnit");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", s->unit, "fail");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(sv)");
        /* Delegate=yes: the subtree is ours, so that the shim and the container get cgroups of their own
         * below the scope, and the container's limits and device filter are written by the engine as on
         * any cgroup. DefaultDependencies=no: no ordering against shutdown.target's jobs at start (a
         * container is stopped at shutdown all the same: scopes conflict with shutdown.target through
         * their slice). CollectMode: a scope that failed (a stop timeout) is not kept around. */
        if (r >= 0)
                r = sd_bus_message_append(m, "(sv)(sv)(sv)(sv)(sv)(sv)", "Description", "s", description,
                                          "Slice", "s", CONTAINER_SCOPE_SLICE, "Delegate", "b", 1, "PIDs",
                                          "au", 1, (uint32_t) getpid(), "DefaultDependencies", "b", 0,
                                          "CollectMode", "s", "inactive-or-failed");
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "a(sa(sv))", 0);
        if (r < 0)
                return berth_error_setm(err, -r, "Cannot build the StartTransientUnit call");
        r = sd_bus_call_async(s->bus, NULL, m, on_reply, s, SCOPE_TIMEOUT_USEC);
        if (r < 0)
                return berth_error_setm(err, -r, "Cannot ask systemd for %s", s->unit);
        return 0;
}

/* Our own cgroup as systemd placed us: the unified hierarchy's path on v2, the name=systemd one on v1 and
 * hybrid (with Delegate=yes systemd made the same path in each controller hierarchy). */
static int own_cgroup(CgroupLayout layout, char *ret, size_t size) {
        _cleanup_free_ char *line = NULL;
        size_t n = 0;
        int r = -ENODATA;
        FILE *f = fopen("/proc/self/cgroup", "re");

        if (!f)
                return negative_errno();
        while (getline(&line, &n, f) > 0) {
                line[strcspn(line, "\n")] = '\0';
                char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
                if (!b)
                        continue;
                *b = '\0';
                if (layout == CGROUP_LAYOUT_V2 ? streq(a + 1, "") : streq(a + 1, "name=systemd")) {
                        r = b[1] == '/' && (size_t) snprintf(ret, size, "%s", b + 1) < size ? 0 : -EBADMSG;
                        break;
                }
        }
        fclose(f);
        return r;
}

int container_scope_finish(ContainerScope *s, char *ret_path, size_t size, BerthError *err) {
        uint64_t deadline = now_usec() + SCOPE_TIMEOUT_USEC;
        CgroupLayout layout;
        char scope[PATH_MAX], dir[PATH_MAX];
        int r;

        while (!s->replied || (!s->job_done && s->call_error == 0)) {
                r = sd_bus_process(s->bus, NULL);
                if (r < 0)
                        return berth_error_setm(err, -r, "Lost the system bus while waiting for %s",
                                                s->unit);
                if (r > 0)
                        continue;
                uint64_t now = now_usec();
                if (now >= deadline)
                        return berth_error_set(err, ETIMEDOUT, "systemd did not start %s in time", s->unit);
                r = sd_bus_wait(s->bus, deadline - now);
                if (r < 0)
                        return berth_error_setm(err, -r, "Lost the system bus while waiting for %s",
                                                s->unit);
        }
        s->bus = sd_bus_flush_close_unref(s->bus);
        if (s->call_error != 0)
                return berth_error_set(err, s->call_error, "systemd refused %s: %s", s->unit,
                                       s->error_message);
        if (!streq(s->job_result, "done"))
                return berth_error_set(err, EIO, "systemd could not start %s: %s", s->unit, s->job_result);

        r = cgroup_detect_layout(&layout);
        if (r >= 0)
                r = own_cgroup(layout, scope, sizeof(scope));
        if (r < 0)
                return berth_error_setm(err, -r, "Cannot find our cgroup in %s", s->unit);
        /* Never a container's cgroup outside the unit we were given (a systemd that placed us elsewhere). */
        const char *leaf = strrchr(scope, '/');
        if (!leaf || !streq(leaf + 1, s->unit))
                return berth_error_set(err, EPROTO, "systemd put us in '%s', not in %s", scope, s->unit);
        if (layout == CGROUP_LAYOUT_V2) {
                /* Out of the scope's own cgroup, so that the engine may enable controllers for the
                 * container's (cgroup v2 allows processes only in leaves of a controlled subtree). */
                if (!snprintf_ok(dir, "/sys/fs/cgroup%s/shim", scope))
                        return berth_error_set(err, ENAMETOOLONG, "cgroup path too long");
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return berth_error_setm(err, errno, "Cannot create '%s'", dir);
                r = cgroup_write(dir, "cgroup.procs", "0");
                if (r < 0)
                        return berth_error_setm(err, -r, "Cannot move the shim into '%s'", dir);
        }
        if ((size_t) snprintf(ret_path, size, "%s/container", scope) >= size)
                return berth_error_set(err, ENAMETOOLONG, "cgroup path too long");
        return 0;
}

void container_scope_done(ContainerScope *s) {
        s->bus = sd_bus_flush_close_unref(s->bus);
}

int container_scope_stop(const char *id) {
        char unit[64];

        if (!snprintf_ok(unit, "berth-%s.scope", id))
                return -ENAMETOOLONG;
        return cgroup_systemd_stop_unit(unit);
}
