/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.berth.Supervisor1's methods for living containers: PauseContainer, ResumeContainer,
 * ContainerStats and OpenLogStreams. Broker only (bus_require_broker first), like containers-bus.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>

#include "bus-names.h"
#include "bus-util.h"
#include "container.h"
#include "containers-life.h"
#include "freezer.h"
#include "log-follow.h"
#include "log.h"
#include "restart-policy.h"
#include "stats.h"

#define OPEN_LOG_FLAG_FOLLOW (UINT64_C(1) << 0)
#define STATS_IDS_MAX CONTAINERS_MAX

const char *container_status_string(const Container *c) {
        if (c->status == CONTAINER_RUNNING && c->paused)
                return "paused";
        return container_status_to_string(c->status);
}

int container_set_paused(Container *c, bool paused) {
        int r;

        if (c->paused == paused)
                return 0;
        r = freezer_set(c->state_dir_fd, paused);
        if (r < 0)
                return r;
        c->paused = paused;
        log_info("Container %s (%s) %s.", c->id, c->name, paused ? "paused" : "resumed");
        (void) container_emit_changed(c);
        return 0;
}

static int pause_or_resume(sd_bus_message *msg, void *userdata, sd_bus_error *error, bool pause) {
        Container *c;
        uint64_t flags;
        int r;

        r = container_bus_read_id_flags(msg, userdata, 0, &c, &flags, error);
        if (r < 0)
                return r;
        if (c->status != CONTAINER_RUNNING)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Container %s is not running.",
                                         c->id);
        if (c->paused == pause)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Container %s is %s already.",
                                         c->id, pause ? "paused" : "not paused");
        r = container_set_paused(c, pause);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Cannot %s container %s: %s",
                                         pause ? "pause" : "resume", c->id, strerror(-r));
        return sd_bus_reply_method_return(msg, NULL);
}

int method_pause_container(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return pause_or_resume(msg, userdata, error, true);
}

int method_resume_container(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return pause_or_resume(msg, userdata, error, false);
}

static int append_stats(sd_bus_message *reply, Container *c) {
        ContainerStats s;
        int r;

        if (c->status != CONTAINER_RUNNING || container_stats_read(c->state_dir_fd, &s) < 0)
                return 0; /* nothing to measure: not listed */
        r = sd_bus_message_open_container(reply, 'r', "sa{st}");
        if (r >= 0)
                r = sd_bus_message_append(reply, "s", c->id);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{st}");
#define ADD(key, v)                                                                                         \
        if (r >= 0 && (v) != UINT64_MAX)                                                                    \
                r = sd_bus_message_append(reply, "{st}", key, (uint64_t) (v));
        ADD("CpuUsageNSec", s.cpu_usage_ns);
        ADD("MemoryUsage", s.memory_usage);
        ADD("MemoryLimit", s.memory_limit);
        ADD("Pids", s.pids);
        ADD("BlockRead", s.block_read);
        ADD("BlockWrite", s.block_write);
        ADD("Timestamp", (uint64_t) g_get_real_time());
#undef ADD
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

int method_container_stats(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **ids = NULL;
        Manager *m = userdata;
        uint64_t flags;
        size_t n = 0;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(msg, &ids);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "t", &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        STRV_FOREACH(id, ids) {
                if (!container_id_is_valid(*id))
                        return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid container id.");
                if (++n > STATS_IDS_MAX)
                        return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "Too many containers.");
        }
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sa{st})");
        if (n == 0) {
                /* None named: every running container. */
                GHashTableIter it;
                Container *c;

                g_hash_table_iter_init(&it, m->containers);
                while (r >= 0 && g_hash_table_iter_next(&it, NULL, (gpointer *) &c))
                        r = append_stats(reply, c);
        } else
                STRV_FOREACH(id, ids) {
                        Container *c = manager_find(m, *id);
                        if (r >= 0 && c)
                                r = append_stats(reply, c);
                }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int method_open_log_streams(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_close_ int pipe_fd = -EBADF;
        int files[2] = { -EBADF, -EBADF }, n = 0;
        Container *c;
        uint64_t flags;
        int r;

        r = container_bus_read_id_flags(msg, userdata, OPEN_LOG_FLAG_FOLLOW, &c, &flags, error);
        if (r < 0)
                return r;
        /* The follower first, then the files: see log-follow.h. */
        if (flags & OPEN_LOG_FLAG_FOLLOW) {
                r = log_follow_begin(c, &pipe_fd);
                if (r < 0)
                        return sd_bus_error_setf(error, BERTH_ERROR_IO, "Cannot follow the log of %s: %s",
                                                 c->id, strerror(-r));
        }
        n = log_open_files(c, files);
        if (n < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Cannot open the log of %s: %s", c->id,
                                         strerror(-n));
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "h");
        for (int i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "h", files[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "h");
        if (r >= 0 && pipe_fd >= 0)
                r = sd_bus_message_append(reply, "h", pipe_fd);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        for (int i = 0; i < n; i++)
                safe_close(files[i]);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}
