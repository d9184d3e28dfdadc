/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Living containers on the public API: Container.Pause, Unpause and OpenLogStreams, and
 * Manager.ContainerStats (one supervisor call for every container asked about). The supervisor does the
 * work (freezer, cgroup statistics, the shim's log followers); the broker authorises and checks owners. */
#include <glib.h>

#include "broker-containers.h"
#include "bus-error.h"
#include "bus-names.h"
#include "bus-util.h"
#include "container-life.h"
#include "log.h"
#include "supervisor-client.h"

#define STATS_NAMES_MAX 1024U

/* ---- Pause, Unpause, OpenLogStreams (authorised by container-object.c's CONTAINER_METHOD) ------------ */

static int forward(Manager *manager, sd_bus_message *m, const char *what, const char *member,
                   const ContainerRecord *c, uint64_t flags) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r;

        r = supervisor_new_call(manager, &call, member);
        if (r >= 0)
                r = sd_bus_message_append(call, "st", c->id, flags);
        if (r < 0)
                return r;
        return container_forward_call(manager, m, call, what);
}

int container_pause_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error) {
        bool pause = streq(sd_bus_message_get_member(m), "Pause");
        uint64_t flags;
        int r;

        r = container_read_flags(m, 0, &flags, error);
        if (r < 0)
                return r;
        if (!streq(c->status, pause ? "running" : "paused"))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Container '%s' is %s, not %s.",
                                         c->name, c->status, pause ? "running" : "paused");
        return forward(manager, m, pause ? "Pausing the container" : "Resuming the container",
                       pause ? "PauseContainer" : "ResumeContainer", c, 0);
}

int container_open_log_streams_body(sd_bus_message *m, Manager *manager, ContainerRecord *c,
                                    sd_bus_error *error) {
        uint64_t flags;
        int r;

        r = container_read_flags(m, OPEN_LOG_STREAMS_FLAG_FOLLOW, &flags, error);
        if (r < 0)
                return r;
        /* (ah files, ah follow): passed on fd by fd. */
        return forward(manager, m, "Opening the log", "OpenLogStreams", c, flags);
}

/* ---- Manager.ContainerStats -------------------------------------------------------------------------- */

typedef struct StatsCall {
        Manager *manager;
        sd_bus_message *request;
        uid_t uid;
} StatsCall;

static int stats_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        StatsCall *sc = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *out = NULL;
        int r;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                (void) bus_reply_internal_error(sc->request, sd_bus_message_get_error(reply),
                                                "Reading statistics");
                goto done;
        }
        r = sd_bus_message_new_method_return(sc->request, &out);
        if (r >= 0)
                r = sd_bus_message_open_container(out, 'a', "(ssa{st})");
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(sa{st})");
        while (r >= 0) {
                const char *id;
                ContainerRecord *c;

                r = sd_bus_message_enter_container(reply, 'r', "sa{st}");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(reply, "s", &id);
                c = r >= 0 && container_id_valid(id)
                            ? container_store_get(sc->manager->containers->store, id)
                            : NULL;
                /* SECURITY: the supervisor answered for the ids we named; checked again all the same. */
                if (r >= 0 && (!c || c->creating || (sc->uid != 0 && c->owner != sc->uid))) {
                        r = sd_bus_message_skip(reply, "a{st}");
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                        continue;
                }
                if (r >= 0)
                        r = sd_bus_message_open_container(out, 'r', "ssa{st}");
                if (r >= 0)
                        r = sd_bus_message_append(out, "ss", c->id, c->name);
                if (r >= 0)
                        r = sd_bus_message_enter_container(reply, 'a', "{st}");
                if (r >= 0)
                        r = sd_bus_message_open_container(out, 'a', "{st}");
                while (r >= 0) {
                        const char *key;
                        uint64_t v;

                        r = sd_bus_message_read(reply, "{st}", &key, &v);
                        if (r <= 0)
                                break;
                        r = sd_bus_message_append(out, "{st}", key, v);
                }
                if (r >= 0)
                        r = sd_bus_message_close_container(out);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        r = sd_bus_message_close_container(out);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(out);
        if (r >= 0)
                r = sd_bus_send(NULL, out, NULL);
        if (r < 0)
                (void) sd_bus_reply_method_errorf(sc->request, BERTH_ERROR_IO,
                                                  "Reading statistics failed: bad reply.");
done:
        sd_bus_message_unref(sc->request);
        free(sc);
        return 0;
}

static int stats_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ ContainerRecord **list = NULL;
        StatsCall *sc;
        uint64_t flags;
        size_t n = 0;
        uid_t uid;
        int r;

        if (bus_message_sender_uid(m, &uid) < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Cannot establish the caller's identity.");
        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_read_strv(m, &names);
        if (r >= 0)
                r = sd_bus_message_read(m, "t", &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        if (g_strv_length(names) > STATS_NAMES_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "More than %u containers.",
                                         STATS_NAMES_MAX);
        r = supervisor_new_call(manager, &call, "ContainerStats");
        if (r < 0)
                return internal_error_unreachable(&internal_supervisor, r, error);
        r = sd_bus_message_open_container(call, 'a', "s");
        if (r < 0)
                return r;
        if (names && names[0]) {
                STRV_FOREACH(name, names) {
                        ContainerRecord *c = container_store_lookup(manager->containers->store, *name);

                        /* SECURITY: another user's container is not found, as GetContainer's objects are not
                         * readable: a caller sees the numbers of their own containers only (root: all). */
                        if (!c || c->creating || (uid != 0 && c->owner != uid))
                                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No container '%s'.",
                                                         *name);
                        r = sd_bus_message_append(call, "s", c->id);
                        if (r < 0)
                                return r;
                }
        } else {
                size_t added = 0;

                r = container_store_list(manager->containers->store, &list, &n);
                for (size_t i = 0; r >= 0 && i < n; i++)
                        if (!list[i]->creating && (uid == 0 || list[i]->owner == uid) &&
                            (streq(list[i]->status, "running") || streq(list[i]->status, "paused"))) {
                                r = sd_bus_message_append(call, "s", list[i]->id);
                                added++;
                        }
                if (r < 0)
                        return r;
                /* Nothing of the caller's runs (an empty list would mean "all" to the supervisor). */
                if (added == 0)
                        return sd_bus_reply_method_return(m, "a(ssa{st})", 0);
        }
        r = sd_bus_message_close_container(call);
        if (r >= 0)
                r = sd_bus_message_append(call, "t", UINT64_C(0));
        if (r < 0)
                return r;
        sc = calloc(1, sizeof(*sc));
        if (!sc)
                return -ENOMEM;
        sc->manager = manager;
        sc->uid = uid;
        sc->request = sd_bus_message_ref(m);
        r = internal_call_send(manager, call, NULL, 0, stats_reply, sc);
        if (r < 0) {
                sd_bus_message_unref(sc->request);
                free(sc);
                return internal_error_unreachable(&internal_supervisor, r, error);
        }
        return 1;
}

int method_container_stats(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return broker_authorize(m, NULL, stats_authorized, userdata, NULL, 0, NULL, error);
}
