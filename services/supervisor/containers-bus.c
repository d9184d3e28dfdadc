/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* org.berth.Supervisor1's container methods. Broker only (bus_require_broker first, and the D-Bus
 * policy); every argument validated before use; privileged options re-checked with polkit in
 * container-create.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <signal.h>

#include "bus-names.h"
#include "bus-util.h"
#include "container.h"
#include "health.h"
#include "log.h"
#include "shim-client.h"
#include "containers-life.h"
#include "restart-policy.h"

#define KILL_FLAG_ALL (UINT64_C(1) << 0)
#define KILL_FLAG_USER (UINT64_C(1) << 1) /* a user's kill or stop: not a failure (restart-policy.h) */
#define DELETE_FLAG_FORCE (UINT64_C(1) << 0)

int container_bus_find(Manager *m, const char *id, ContainerNeed need, Container **ret,
                       sd_bus_error *error) {
        Container *c;
        bool fits;

        if (!container_id_is_valid(id))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid container id.");
        c = manager_find(m, id);
        if (!c || (need != CONTAINER_NEED_ANY && c->status == CONTAINER_CREATING))
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No container %s.", id);
        switch (need) {
        case CONTAINER_NEED_RUNNING:
                fits = c->status == CONTAINER_RUNNING;
                break;
        case CONTAINER_NEED_CREATED_OR_RUNNING:
                fits = c->status == CONTAINER_RUNNING || c->status == CONTAINER_CREATED;
                break;
        default:
                fits = true;
        }
        if (!fits)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Container %s is not running.",
                                         id);
        *ret = c;
        return 0;
}

int container_bus_read_id_flags(sd_bus_message *msg, Manager *m, uint64_t known, Container **ret_c,
                                uint64_t *ret_flags, sd_bus_error *error) {
        const char *id;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "s", &id);
        if (r < 0)
                return r;
        if (ret_flags) {
                r = sd_bus_message_read(msg, "t", ret_flags);
                if (r < 0)
                        return r;
                r = bus_check_flags(*ret_flags, known, error);
                if (r < 0)
                        return r;
        }
        return container_bus_find(m, id, CONTAINER_NEED_ANY, ret_c, error);
}

int method_create_container(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        int r = bus_require_broker(msg, error);

        if (r < 0)
                return r;
        return container_create_begin(userdata, msg, error);
}

int method_start_container(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Container *c;
        ShimReply reply;
        uint64_t flags;
        int r;

        r = container_bus_read_id_flags(msg, userdata, 0, &c, &flags, error);
        if (r < 0)
                return r;
        if (c->status != CONTAINER_CREATED)
                return sd_bus_error_setf(error, BERTH_ERROR_BUSY, "Container %s is %s, not created.", c->id,
                                         container_status_to_string(c->status));
        r = shim_call(c->state_dir_fd, SHIM_OP_START, 0, 0, &reply);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Cannot reach the shim of %s: %s", c->id,
                                         strerror(-r));
        if (reply.error != 0)
                return sd_bus_error_setf(error,
                                         reply.error == EBUSY ? BERTH_ERROR_BUSY : BERTH_ERROR_EXEC_FAILED,
                                         "Cannot start container %s: %s", c->id, reply.message);
        c->started_at = reply.started_at;
        if (c->status == CONTAINER_CREATED) {
                c->status = CONTAINER_RUNNING;
                (void) container_emit_changed(c);
        }
        return sd_bus_reply_method_return(msg, NULL);
}

int method_kill_container(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *id;
        Container *c;
        ShimReply reply;
        uint64_t flags;
        int32_t sig;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "sit", &id, &sig, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, KILL_FLAG_ALL | KILL_FLAG_USER, error);
        if (r < 0)
                return r;
        if (sig <= 0 || sig >= _NSIG)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid signal %d.", sig);
        r = container_bus_find(m, id, CONTAINER_NEED_ANY, &c, error);
        if (r < 0)
                return r;
        if (c->status == CONTAINER_STOPPED && (flags & KILL_FLAG_USER) && restart_pending(c)) {
                /* Stopped with a restart due (the policy's back-off, a health restart): a user's stop or
                 * kill cancels it, as docker's stop of a restarting container does. */
                restart_note_user_stop(c);
                return sd_bus_reply_method_return(msg, NULL);
        }
        if (c->status == CONTAINER_STOPPED)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Container %s is not running.",
                                         id);
        r = shim_call(c->state_dir_fd, SHIM_OP_KILL, sig, (flags & KILL_FLAG_ALL) ? SHIM_KILL_ALL : 0,
                      &reply);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Cannot reach the shim of %s: %s", id,
                                         strerror(-r));
        if (reply.error != 0)
                return sd_bus_error_setf(error,
                                         reply.error == ESRCH ? BERTH_ERROR_INVALID_ARGS : BERTH_ERROR_IO,
                                         "Cannot signal container %s: %s", id, reply.message);
        if (flags & KILL_FLAG_USER)
                restart_note_user_stop(c);
        /* A paused container gets the signal once thawed (docker's order: signal, then thaw). */
        if (c->paused && (r = container_set_paused(c, false)) < 0)
                log_warning_errno(r, "Cannot thaw container %s after a signal: %m", id);
        return sd_bus_reply_method_return(msg, NULL);
}

int method_delete_container(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        Container *c;
        ShimReply reply;
        uint64_t flags;
        int r;

        r = container_bus_read_id_flags(msg, m, DELETE_FLAG_FORCE, &c, &flags, error);
        if (r < 0)
                return r;
        if (c->pending_delete || c->cleanup_source)
                return sd_bus_error_setf(error, BERTH_ERROR_BUSY, "Container %s is being removed.", c->id);
        if (restart_in_flight(c))
                return sd_bus_error_setf(error, BERTH_ERROR_BUSY, "Container %s is restarting.", c->id);
        if (c->paused)
                (void) container_set_paused(c, false);
        if (c->status == CONTAINER_RUNNING && !(flags & DELETE_FLAG_FORCE))
                return sd_bus_error_setf(error, BERTH_ERROR_BUSY, "Container %s is running.", c->id);
        if (c->status != CONTAINER_STOPPED) {
                /* A created container's init only waits: killing it is not "forcing" anything. */
                r = shim_call(c->state_dir_fd, SHIM_OP_KILL, SIGKILL, SHIM_KILL_ALL, &reply);
                if (r >= 0 && c->shim_fd >= 0) {
                        c->pending_delete = sd_bus_message_ref(msg);
                        return 1; /* answered by container_set_stopped() */
                }
                /* No shim to wait for: it is gone already. */
                (void) container_read_exit(c);
                c->status = CONTAINER_STOPPED;
        }
        /* Answered once the removal child is done. */
        c->pending_delete = sd_bus_message_ref(msg);
        container_delete_async(c);
        return 1;
}

int method_wait_container(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Container *c;
        uint64_t flags;
        int r;

        r = container_bus_read_id_flags(msg, userdata, 0, &c, &flags, error);
        if (r < 0)
                return r;
        if (c->status == CONTAINER_STOPPED)
                return sd_bus_reply_method_return(msg, "is", c->exit_code, c->reason);
        if (c->waiters->len >= 64)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "Too many waiters on %s.", c->id);
        g_ptr_array_add(c->waiters, sd_bus_message_ref(msg));
        return 1;
}

int method_open_log(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_close_ int fd = -EBADF;
        Container *c;
        uint64_t flags;
        int r;

        r = container_bus_read_id_flags(msg, userdata, 0, &c, &flags, error);
        if (r < 0)
                return r;
        /* Every container has a log, a foreground one too (its shim copies the output to its caller). */
        fd = openat(c->state_dir_fd, SHIM_LOG_FILE, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
                /* Nothing written yet: an empty log, as the caller expects. */
                fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Cannot open the log of %s: %m", c->id);
        return sd_bus_reply_method_return(msg, "h", fd);
}

static int append_one(sd_bus_message *reply, Container *c) {
        int r;

        r = sd_bus_message_open_container(reply, 'r', "sa{sv}");
        if (r >= 0)
                r = sd_bus_message_append(reply, "s", c->id);
        if (r >= 0)
                r = sd_bus_message_append(reply, "a{sv}", 11, "Status", "s", container_status_string(c),
                                          "Pid", "u", c->pid, "ExitCode", "i", c->exit_code, "Reason", "s",
                                          c->reason, "CreatedAt", "t", c->created_at, "StartedAt", "t",
                                          c->started_at, "FinishedAt", "t", c->finished_at, "Name", "s",
                                          c->name, "Owner", "u", c->owner, "Health", "s", health_status(c),
                                          "RestartCount", "u", restart_count(c));
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

int method_list_containers(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        GHashTableIter it;
        Container *c;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sa{sv})");
        g_hash_table_iter_init(&it, m->containers);
        while (r >= 0 && g_hash_table_iter_next(&it, NULL, (gpointer *) &c))
                if (c->status != CONTAINER_CREATING)
                        r = append_one(reply, c);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}
