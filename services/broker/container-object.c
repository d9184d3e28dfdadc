/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One object per container: /org/berth/Broker1/container/<id>, interface org.berth.Broker1.Container.
 * A fallback vtable on the prefix serves them all; each method authorises against the container's owner
 * (broker_authorize_owned) and looks the container up again afterwards (it may be gone by then). */
#include <glib.h>
#include <signal.h>
#include <stdio.h>

#include "berth-flags.h"
#include "broker-containers.h"
#include "broker-networks.h"
#include "bus-error.h"
#include "bus-names.h"
#include "bus-util.h"
#include "log.h"
#include "supervisor-client.h"
#include "container-life.h"
#include "events.h"

static void message_unref_notify(void *p) {
        sd_bus_message_unref(p);
}

#define SUPERVISOR_KILL_FLAG_ALL (UINT64_C(1) << 0)
/* A kill or stop by a user: never a failure for the restart policy (supervisor's restart-policy.h). */
#define SUPERVISOR_KILL_FLAG_USER (UINT64_C(1) << 1)

/* A paused container runs (frozen): it can be killed, stopped, removed only with force. */
static bool is_running(const ContainerRecord *c) {
        return streq(c->status, "running") || streq(c->status, "paused");
}
#define STOP_TIMEOUT_MAX_SEC (24U * 3600U)

static const char *id_from_path(const char *path) {
        const char *id;

        if (!path || !g_str_has_prefix(path, BERTH_BROKER_CONTAINER_PREFIX "/"))
                return NULL;
        id = path + strlen(BERTH_BROKER_CONTAINER_PREFIX "/");
        return container_id_valid(id) ? id : NULL;
}

ContainerRecord *container_from_path(Manager *m, const char *path) {
        ContainerRecord *c = container_store_get(m->containers->store, id_from_path(path));

        return c && !c->creating ? c : NULL;
}

/* ---- replies to waiting callers -------------------------------------------------------------------- */

static int add_waiter(GPtrArray **array, sd_bus_message *m, sd_bus_error *error) {
        if (!*array)
                *array = g_ptr_array_new_with_free_func(message_unref_notify);
        if ((*array)->len >= CONTAINER_WAITERS_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT,
                                         "Too many callers waiting on this container.");
        g_ptr_array_add(*array, sd_bus_message_ref(m));
        return 1;
}

/* ---- forwarding a call to the supervisor ---------------------------------------------------------- */

typedef struct Forward {
        sd_bus_message *request;
        const char *what; /* static */
        bool returns_fd;
} Forward;

static int forward_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Forward *f = userdata;
        int fd, r;

        if (sd_bus_message_is_method_error(reply, NULL))
                (void) bus_reply_internal_error(f->request, sd_bus_message_get_error(reply), f->what);
        else if (f->returns_fd) {
                r = sd_bus_message_read(reply, "h", &fd);
                if (r < 0)
                        (void) sd_bus_reply_method_errorf(f->request, BERTH_ERROR_IO,
                                                          "%s failed: bad reply.", f->what);
                else
                        (void) sd_bus_reply_method_return(f->request, "h", fd);
        } else
                (void) sd_bus_reply_method_return(f->request, "");
        sd_bus_message_unref(f->request);
        free(f);
        return 0;
}

static int forward(Manager *m, sd_bus_message *request, const char *what, bool returns_fd,
                   const char *member, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_free_ Forward *f = NULL;
        va_list ap;
        int r;

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->what = what;
        f->returns_fd = returns_fd;
        va_start(ap, types);
        r = internal_callv(m, &internal_supervisor, NULL, 0, forward_reply, f, member, types, ap);
        va_end(ap);
        if (r < 0)
                return internal_reply_unreachable(request, &internal_supervisor, r);
        f->request = sd_bus_message_ref(request);
        TAKE_PTR(f);
        return 1;
}

/* ---- methods --------------------------------------------------------------------------------------- */

/* Every method: look the container up, authorise against its owner, then run the body with the container
 * looked up again. */
#define CONTAINER_METHOD(fn, body_fn)                                                                       \
        static int fn##_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {                \
                ContainerRecord *c = container_from_path(userdata, sd_bus_message_get_path(m));             \
                if (!c)                                                                                     \
                        return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No such container.");       \
                return body_fn(m, userdata, c, error);                                                      \
        }                                                                                                   \
        static int fn(sd_bus_message *m, void *userdata, sd_bus_error *error) {                             \
                ContainerRecord *c = container_from_path(userdata, sd_bus_message_get_path(m));             \
                if (!c)                                                                                     \
                        return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No such container.");       \
                const char *details[] = { "id", c->id, "name", c->name, NULL };                             \
                return broker_authorize_owned(m, c->owner, details, fn##_authorized, userdata, error);      \
        }

/* Reads a method's arguments from the start (the authorisation may have read them already): those of
 * types first, then the trailing flags, refused if any is not in known. */
static int read_args(sd_bus_message *m, uint64_t known, uint64_t *ret_flags, sd_bus_error *error,
                     const char *types, ...) {
        va_list ap;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r >= 0 && types) {
                va_start(ap, types);
                r = sd_bus_message_readv(m, types, ap);
                va_end(ap);
        }
        if (r >= 0)
                r = sd_bus_message_read(m, "t", ret_flags);
        if (r < 0)
                return r;
        return bus_check_flags(*ret_flags, known, error);
}

int container_read_flags(sd_bus_message *m, uint64_t known, uint64_t *ret_flags, sd_bus_error *error) {
        return read_args(m, known, ret_flags, error, NULL);
}

static int start_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error) {
        uint64_t flags;
        int r;

        r = read_args(m, 0, &flags, error, NULL);
        if (r < 0)
                return r;
        if (!streq(c->status, "created"))
                return sd_bus_error_setf(error, BERTH_ERROR_BUSY, "Container '%s' is %s, not created.",
                                         c->name, c->status);
        return forward(manager, m, "Starting the container", false, "StartContainer", "st", c->id,
                       UINT64_C(0));
}
CONTAINER_METHOD(method_start, start_body)

static int kill_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error) {
        uint64_t flags;
        int32_t sig;
        int r;

        r = read_args(m, KILL_CONTAINER_FLAG_ALL, &flags, error, "i", &sig);
        if (r < 0)
                return r;
        if (sig <= 0 || sig >= _NSIG)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid signal %d.", sig);
        if (!is_running(c))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Container '%s' is not running.",
                                         c->name);
        char sigtext[16];
        snprintf(sigtext, sizeof(sigtext), "%d", sig);
        broker_event_emit(manager, EVENT_TYPE_CONTAINER, "kill", c->id, c->name, c->owner,
                          (const char *const[]){ "signal", sigtext, NULL });
        return forward(manager, m, "Signalling the container", false, "KillContainer", "sit", c->id, sig,
                       ((flags & KILL_CONTAINER_FLAG_ALL) ? SUPERVISOR_KILL_FLAG_ALL : 0) |
                               SUPERVISOR_KILL_FLAG_USER);
}
CONTAINER_METHOD(method_kill, kill_body)

static int on_stop_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *manager = userdata;
        const char *id = NULL;
        ContainerRecord *c;

        (void) sd_event_source_get_description(s, &id);
        c = container_store_get(manager->containers->store, id);
        if (!c || !is_running(c))
                return 0;
        log_info("Container %s did not stop in time: SIGKILL.", c->id);
        (void) supervisor_call(manager, NULL, 0, NULL, NULL, "KillContainer", "sit", c->id,
                               (int32_t) SIGKILL, SUPERVISOR_KILL_FLAG_ALL | SUPERVISOR_KILL_FLAG_USER);
        return 0;
}

static int stop_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error) {
        uint64_t flags;
        uint32_t timeout;
        bool first;
        int r;

        r = read_args(m, 0, &flags, error, "u", &timeout);
        if (r < 0)
                return r;
        if (timeout > STOP_TIMEOUT_MAX_SEC)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Timeout above %u seconds.",
                                         STOP_TIMEOUT_MAX_SEC);
        /* Stopping what does not run is done already (docker's behaviour); a created container keeps
         * waiting for Start. */
        if (!is_running(c)) {
                /* Stopped, it may have a restart due (the restart policy's back-off, a health restart):
                 * the supervisor cancels it for a user's stop (a no-op otherwise). */
                if (streq(c->status, "stopped"))
                        (void) supervisor_call(manager, NULL, 0, NULL, NULL, "KillContainer", "sit", c->id,
                                               (int32_t) SIGTERM, SUPERVISOR_KILL_FLAG_USER);
                return sd_bus_reply_method_return(m, "");
        }
        first = !c->stop_waiters || c->stop_waiters->len == 0;
        r = add_waiter(&c->stop_waiters, m, error);
        if (r < 0 || !first)
                return r;
        /* SIGTERM to the init, SIGKILL to all after the timeout; the reply comes with the exit. A stop by
         * the user is not a failure: Stop succeeds whatever the exit status. */
        (void) supervisor_call(manager, NULL, 0, NULL, NULL, "KillContainer", "sit", c->id,
                               (int32_t) (timeout == 0 ? SIGKILL : SIGTERM),
                               (timeout == 0 ? SUPERVISOR_KILL_FLAG_ALL : 0) | SUPERVISOR_KILL_FLAG_USER);
        if (timeout > 0 && !c->stop_timer) {
                r = sd_event_add_time_relative(manager->event, &c->stop_timer, CLOCK_MONOTONIC,
                                               (uint64_t) timeout * UINT64_C(1000000), 0, on_stop_timeout,
                                               manager);
                if (r >= 0)
                        r = sd_event_source_set_description(c->stop_timer, c->id);
                if (r < 0)
                        log_warning_errno(r, "Cannot arm the stop timeout of %s: %m", c->id);
        }
        return 1;
}
CONTAINER_METHOD(method_stop, stop_body)

static int remove_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error) {
        uint64_t flags;
        int r;

        r = read_args(m, REMOVE_CONTAINER_FLAG_FORCE, &flags, error, NULL);
        if (r < 0)
                return r;
        if (is_running(c) && !(flags & REMOVE_CONTAINER_FLAG_FORCE))
                return sd_bus_error_setf(error, BERTH_ERROR_BUSY,
                                         "Container '%s' is running: stop it first or force the removal.",
                                         c->name);
        r = add_waiter(&c->remove_waiters, m, error);
        if (r < 0)
                return r;
        r = container_begin_remove(manager, c, flags & REMOVE_CONTAINER_FLAG_FORCE);
        if (r < 0) {
                g_ptr_array_remove(c->remove_waiters, m);
                return internal_error_unreachable(&internal_supervisor, r, error);
        }
        return 1;
}
CONTAINER_METHOD(method_remove, remove_body)

static int wait_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error) {
        uint64_t flags;
        int r;

        r = read_args(m, WAIT_FLAGS_ALL, &flags, error, NULL);
        if (r < 0)
                return r;
        /* A --rm container answers once it is removed, unless the caller wants the exit only. */
        if (streq(c->status, "stopped") &&
            (!(c->auto_remove && c->removing) || (flags & WAIT_FLAG_EXIT_ONLY)))
                return sd_bus_reply_method_return(m, "is", c->exit_code, c->reason);
        if (flags & WAIT_FLAG_EXIT_ONLY)
                return add_waiter(&c->exit_waiters, m, error);
        return add_waiter(&c->waiters, m, error);
}

/* Wait also answers for a container removed meanwhile (its tombstone): see broker-containers.h. */
static int wait_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ContainerRecord *c = container_from_path(userdata, sd_bus_message_get_path(m));
        const Tombstone *t;
        uint64_t flags;
        int r;

        if (c)
                return wait_body(m, userdata, c, error);
        t = container_tombstone_get(userdata, id_from_path(sd_bus_message_get_path(m)));
        if (!t)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No such container.");
        r = read_args(m, WAIT_FLAGS_ALL, &flags, error, NULL);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "is", t->exit_code, t->reason);
}

static int method_wait(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *id = id_from_path(sd_bus_message_get_path(m));
        ContainerRecord *c = container_from_path(userdata, sd_bus_message_get_path(m));
        const Tombstone *t = c ? NULL : container_tombstone_get(userdata, id);

        uid_t uid, owner;

        if (!c && !t)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No such container.");
        owner = c ? c->owner : t->owner;
        /* SECURITY: Wait tells when the container stopped and how; its owner (and root) read the same in
         * its properties without polkit (property_get), so for them Wait asks none either. An attached
         * run sends Wait before Start: with both needing polkit, an administrator on a terminal was asked
         * twice at once, and one of the answers was lost. Anyone else needs container-manage-any. */
        if (bus_message_sender_uid(m, &uid) >= 0 && (uid == 0 || uid == owner))
                return wait_authorized(m, userdata, error);
        const char *details[] = { "id", id, "name", c ? c->name : "", NULL };
        return broker_authorize_owned(m, owner, details, wait_authorized, userdata, error);
}

static int open_log_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error) {
        uint64_t flags;
        int r;

        r = read_args(m, 0, &flags, error, NULL);
        if (r < 0)
                return r;
        return forward(manager, m, "Opening the log", true, "OpenLog", "st", c->id, UINT64_C(0));
}
CONTAINER_METHOD(method_open_log, open_log_body)
CONTAINER_METHOD(method_exec, container_exec_body)
CONTAINER_METHOD(method_attach, container_attach_body)
CONTAINER_METHOD(method_top, container_top_body)
CONTAINER_METHOD(method_resize_terminal, container_resize_terminal_body)
CONTAINER_METHOD(method_kill_exec, container_kill_exec_body)

static int get_network_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error) {
        uint64_t flags;
        int r = read_args(m, 0, &flags, error, NULL);

        return r < 0 ? r : broker_container_network(manager, m, c->id);
}
CONTAINER_METHOD(method_get_network, get_network_body)
CONTAINER_METHOD(method_get_spec, container_get_spec_body)
CONTAINER_METHOD(method_pause, container_pause_body)
CONTAINER_METHOD(method_open_log_streams, container_open_log_streams_body)

/* ---- properties ------------------------------------------------------------------------------------ */

int container_property_append(const ContainerRecord *c, const char *property, sd_bus_message *reply) {
        if (streq(property, "Id"))
                return sd_bus_message_append(reply, "s", c->id);
        if (streq(property, "Name"))
                return sd_bus_message_append(reply, "s", c->name);
        if (streq(property, "Image"))
                return sd_bus_message_append(reply, "s", c->image);
        if (streq(property, "Status"))
                return sd_bus_message_append(reply, "s", c->status);
        if (streq(property, "Pid"))
                return sd_bus_message_append(reply, "u", c->pid);
        if (streq(property, "ExitCode"))
                return sd_bus_message_append(reply, "i", c->exit_code);
        if (streq(property, "Reason"))
                return sd_bus_message_append(reply, "s", c->reason);
        if (streq(property, "Owner"))
                return sd_bus_message_append(reply, "u", (uint32_t) c->owner);
        if (streq(property, "CreatedAt"))
                return sd_bus_message_append(reply, "t", c->created_at);
        if (streq(property, "StartedAt"))
                return sd_bus_message_append(reply, "t", c->started_at);
        if (streq(property, "FinishedAt"))
                return sd_bus_message_append(reply, "t", c->finished_at);
        if (streq(property, "Options"))
                return sd_bus_message_append(reply, "s", c->options);
        if (streq(property, "Health"))
                return sd_bus_message_append(reply, "s", c->health ?: "");
        if (streq(property, "RestartCount"))
                return sd_bus_message_append(reply, "u", c->restart_count);
        if (streq(property, "AutoRemove"))
                return sd_bus_message_append(reply, "b", c->auto_remove);
        return -ENOENT;
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        ContainerRecord *c = container_from_path(userdata, path);
        sd_bus_message *current = sd_bus_get_current_message(bus);

        if (!c)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No such container.");
        /* SECURITY: a caller reading properties sees their own containers only (root: all); the same
         * rule as ListContainers. container-properties.c answers everyone else (after polkit
         * container-manage-any) before sd-bus gets here; this check stays as the last line. */
        if (current && streq_ptr(sd_bus_message_get_interface(current), "org.freedesktop.DBus.Properties")) {
                uid_t uid;

                if (bus_message_sender_uid(current, &uid) < 0 || (uid != 0 && uid != c->owner))
                        return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                                 "Container %s belongs to another user.", c->id);
        }
        return container_property_append(c, property, reply);
}

static int find_object(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                       sd_bus_error *error) {
        if (!container_from_path(userdata, path) && !container_tombstone_get(userdata, id_from_path(path)))
                return 0;
        *found = userdata;
        return 1;
}

static int enumerate_objects(sd_bus *bus, const char *prefix, void *userdata, char ***ret_nodes,
                             sd_bus_error *error) {
        Manager *m = userdata;
        sd_bus_message *current = sd_bus_get_current_message(bus);
        _cleanup_free_ ContainerRecord **list = NULL;
        g_autoptr(GPtrArray) nodes = g_ptr_array_new();
        uid_t uid = (uid_t) -1;
        size_t n = 0;
        int r;

        if (current)
                (void) bus_message_sender_uid(current, &uid);
        r = container_store_list(m->containers->store, &list, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                char *p;

                if (list[i]->creating || (uid != 0 && uid != list[i]->owner))
                        continue;
                p = container_object_path(list[i]->id);
                if (!p)
                        return -ENOMEM;
                g_ptr_array_add(nodes, p);
        }
        g_ptr_array_add(nodes, NULL);
        *ret_nodes = (char **) g_ptr_array_free(TAKE_PTR(nodes), false);
        return 0;
}

const sd_bus_vtable broker_container_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Name", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Image", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Owner", "u", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("CreatedAt", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Options", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("AutoRemove", "b", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Status", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Pid", "u", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ExitCode", "i", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Reason", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("StartedAt", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("FinishedAt", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Health", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("RestartCount", "u", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_NAMES("Start", "t", SD_BUS_PARAM(flags), "", SD_BUS_PARAM(), method_start,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Kill", "it", SD_BUS_PARAM(signal) SD_BUS_PARAM(flags), "", SD_BUS_PARAM(),
                                 method_kill, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Stop", "ut", SD_BUS_PARAM(timeout) SD_BUS_PARAM(flags), "", SD_BUS_PARAM(),
                                 method_stop, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Remove", "t", SD_BUS_PARAM(flags), "", SD_BUS_PARAM(), method_remove,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Wait", "t", SD_BUS_PARAM(flags), "is",
                                 SD_BUS_PARAM(exit_code) SD_BUS_PARAM(reason), method_wait,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("OpenLog", "t", SD_BUS_PARAM(flags), "h", SD_BUS_PARAM(log),
                                 method_open_log, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES(
                "Exec", "sa{sh}t", SD_BUS_PARAM(options) SD_BUS_PARAM(fds) SD_BUS_PARAM(flags), "uah",
                SD_BUS_PARAM(pid) SD_BUS_PARAM(pty), method_exec, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Attach", "t", SD_BUS_PARAM(flags), "h", SD_BUS_PARAM(stream),
                                 method_attach, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Top", "t", SD_BUS_PARAM(flags), "a(uuus)", SD_BUS_PARAM(processes),
                                 method_top, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ResizeTerminal", "uut",
                                 SD_BUS_PARAM(rows) SD_BUS_PARAM(columns) SD_BUS_PARAM(flags), "",
                                 SD_BUS_PARAM(), method_resize_terminal, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("KillExec", "uit",
                                 SD_BUS_PARAM(pid) SD_BUS_PARAM(signal) SD_BUS_PARAM(flags), "",
                                 SD_BUS_PARAM(), method_kill_exec, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Pause", "t", SD_BUS_PARAM(flags), "", SD_BUS_PARAM(), method_pause,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Unpause", "t", SD_BUS_PARAM(flags), "", SD_BUS_PARAM(), method_pause,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("OpenLogStreams", "t", SD_BUS_PARAM(flags), "ahah",
                                 SD_BUS_PARAM(files) SD_BUS_PARAM(follow), method_open_log_streams,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetNetwork", "t", SD_BUS_PARAM(flags), "s", SD_BUS_PARAM(json),
                                 method_get_network, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("GetSpec", "t", SD_BUS_PARAM(flags), "s", SD_BUS_PARAM(spec),
                                 method_get_spec, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

int container_objects_register(Manager *m) {
        ContainerManager *cm = m->containers;
        int r;

        r = sd_bus_add_fallback_vtable(m->bus, &cm->vtable_slot, BERTH_BROKER_CONTAINER_PREFIX,
                                       BERTH_BROKER_CONTAINER_IFACE, broker_container_vtable, find_object,
                                       m);
        if (r < 0)
                return log_error_errno(r, "Failed to publish %s: %m", BERTH_BROKER_CONTAINER_PREFIX);
        r = sd_bus_add_node_enumerator(m->bus, &cm->enumerator_slot, BERTH_BROKER_CONTAINER_PREFIX,
                                       enumerate_objects, m);
        if (r < 0)
                return log_error_errno(r, "Failed to publish %s: %m", BERTH_BROKER_CONTAINER_PREFIX);
        return 0;
}
