/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Container.Exec, Attach and Top: forwarded to the supervisor once authorised (container-manage on
 * one's own container, container-manage-any on another's: container-object.c's CONTAINER_METHOD and
 * broker-auth.c's table). The options JSON is read by the supervisor's exec parser; the broker checks
 * the shape of the call and the container's state. */
#include <glib.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "broker-containers.h"
#include "bus-error.h"
#include "bus-names.h"
#include "bus-util.h"
#include "broker.h"
#include "container-events.h"
#include "log.h"
#include "supervisor-client.h"

#define EXEC_OPTIONS_SIZE_MAX (256U * 1024U)
#define EXEC_FDS_MAX 4U

typedef struct Forwarded {
        sd_bus_message *request;
        const char *what;
} Forwarded;

/* The supervisor's reply, body and fds, becomes ours. */
static int forwarded_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *out = NULL;
        Forwarded *f = userdata;
        int r;

        if (sd_bus_message_is_method_error(reply, NULL))
                (void) bus_reply_internal_error(f->request, sd_bus_message_get_error(reply), f->what);
        else {
                r = sd_bus_message_new_method_return(f->request, &out);
                if (r >= 0)
                        r = sd_bus_message_copy(out, reply, true);
                if (r >= 0)
                        r = sd_bus_send(NULL, out, NULL);
                if (r < 0)
                        (void) sd_bus_reply_method_errorf(f->request, BERTH_ERROR_IO,
                                                          "%s failed: bad reply.", f->what);
        }
        sd_bus_message_unref(f->request);
        free(f);
        return 0;
}

int container_forward_call(Manager *manager, sd_bus_message *request, sd_bus_message *call,
                           const char *what) {
        Forwarded *f = calloc(1, sizeof(*f));
        int r;

        if (!f)
                return -ENOMEM;
        f->what = what;
        f->request = sd_bus_message_ref(request);
        r = internal_call_send(manager, call, NULL, 0, forwarded_reply, f);
        if (r < 0) {
                sd_bus_message_unref(f->request);
                free(f);
                return internal_reply_unreachable(request, &internal_supervisor, r);
        }
        return 1;
}

static int require_running(ContainerRecord *c, sd_bus_error *error) {
        if (!streq(c->status, "running"))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Container '%s' is not running.",
                                         c->name);
        return 0;
}

/* The Exec arguments (options, fds, flags) from m's read position on. */
static int exec_body_at(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        const char *options, *keys[EXEC_FDS_MAX];
        int fds[EXEC_FDS_MAX];
        size_t n = 0;
        uint64_t flags;
        int r;

        r = sd_bus_message_read(m, "s", &options);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "{sh}");
        if (r < 0)
                return r;
        for (;;) {
                const char *key;
                int fd;

                r = sd_bus_message_read(m, "{sh}", &key, &fd);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (!g_strv_contains((const char *const[]){ "stdin", "stdout", "stderr", "status", NULL },
                                     key))
                        return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Unknown fd '%s'.", key);
                for (size_t i = 0; i < n; i++)
                        if (streq(keys[i], key))
                                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS,
                                                         "Duplicate fd '%s'.", key);
                keys[n] = key;
                fds[n++] = fd;
        }
        r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_read(m, "t", &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        if (strlen(options) > EXEC_OPTIONS_SIZE_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Exec options above %u bytes.",
                                         EXEC_OPTIONS_SIZE_MAX);
        r = require_running(c, error);
        if (r < 0)
                return r;

        r = supervisor_new_call(manager, &call, "ExecContainer");
        if (r >= 0)
                r = sd_bus_message_append(call, "ss", c->id, options);
        if (r >= 0)
                r = sd_bus_message_open_container(call, 'a', "{sh}");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(call, "{sh}", keys[i], fds[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(call);
        if (r >= 0)
                r = sd_bus_message_append(call, "t", UINT64_C(0));
        if (r < 0)
                return r;
        r = container_forward_call(manager, m, call, "Exec");
        if (r < 0)
                return r;
        /* After the forward: the log and the event are not what the caller waits for. */
        log_info("Exec in container %s for uid %u.", c->id, (unsigned) c->owner);
        container_event_exec(manager, c);
        return r;
}

int container_exec_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error) {
        int r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        return exec_body_at(m, manager, c, error);
}

/* ---- Manager.ExecContainer: Exec by name, in one call ---------------------------------------------- */

/* The container authorised, by id: a name may name another container by the time polkit answered. */
typedef struct ExecByName {
        Manager *manager;
        char id[];
} ExecByName;

static int exec_by_name_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ExecByName *e = userdata;
        ContainerRecord *c = container_store_get(e->manager->containers->store, e->id);
        const char *name;
        int r;

        if (!c || c->creating)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No such container.");
        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        return exec_body_at(m, e->manager, c, error);
}

static int exec_by_name_not_found(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        const char *name;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No container '%s'.", name);
}

int method_exec_container(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *manager = userdata;
        ExecByName *e;
        ContainerRecord *c;
        const char *name;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        c = container_store_lookup(manager->containers->store, name);
        /* SECURITY: that a name is unknown is what GetContainer says, to whoever has org.berth.info. */
        if (!c || c->creating)
                return broker_authorize_action(m, BERTH_ACTION_INFO, NULL, exec_by_name_not_found, manager,
                                               NULL, 0, NULL, error);
        e = malloc(offsetof(ExecByName, id) + strlen(c->id) + 1);
        if (!e)
                return -ENOMEM;
        e->manager = manager;
        strcpy(e->id, c->id);
        const char *details[] = { "id", c->id, "name", c->name, NULL };
        /* SECURITY: exactly Container.Exec's rule (container-manage for the owner, container-manage-any
         * for anyone else), for the container the name named when the call came. */
        return broker_authorize_owned_full(m, c->owner, details, exec_by_name_authorized, e, free, error);
}

static int simple_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error,
                       const char *member, const char *what) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        uint64_t flags;
        int r;

        r = container_read_flags(m, 0, &flags, error);
        if (r < 0)
                return r;
        r = require_running(c, error);
        if (r < 0)
                return r;
        r = supervisor_new_call(manager, &call, member);
        if (r >= 0)
                r = sd_bus_message_append(call, "st", c->id, UINT64_C(0));
        if (r < 0)
                return r;
        return container_forward_call(manager, m, call, what);
}

int container_attach_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error) {
        return simple_body(m, manager, c, error, "AttachContainer", "Attaching");
}

int container_top_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error) {
        return simple_body(m, manager, c, error, "TopContainer", "Listing the processes");
}
