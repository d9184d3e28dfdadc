/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "broker.h"
#include "bus-names.h"
#include "bus-util.h"
#include "config.h"
#include "internal-call.h"
#include "berth-limits.h"
#include "log.h"

/* GetInfo asks the three internal services at once and answers when all have replied (or failed),
 * so one call proves the whole chain: bus, activation, policy, and each service's sender check. */

static const InternalService *const internal_services[] = {
        &internal_fetcher,
        &internal_unpacker,
        &internal_supervisor,
};
#define N_INTERNAL ELEMENTSOF(internal_services)

typedef struct InfoQuery {
        sd_bus_message *request;
        sd_bus_message *replies[N_INTERNAL];
        unsigned pending;
} InfoQuery;

typedef struct InfoSlot {
        InfoQuery *query;
        size_t index;
} InfoSlot;

static void info_query_free(InfoQuery *q) {
        if (!q)
                return;
        sd_bus_message_unref(q->request);
        for (size_t i = 0; i < N_INTERNAL; i++)
                sd_bus_message_unref(q->replies[i]);
        free(q);
}

static int append_service(sd_bus_message *reply, size_t i, sd_bus_message *answer) {
        const sd_bus_error *e = answer ? sd_bus_message_get_error(answer) : NULL;
        int r;

        r = sd_bus_message_open_container(reply, 'r', "ssa{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "ss", internal_services[i]->name, internal_services[i]->bus_name);
        if (r < 0)
                return r;

        if (answer && !e) {
                r = sd_bus_message_rewind(answer, true);
                if (r < 0)
                        return r;
                /* The status dict is the service's own; the broker passes it through unchanged
                 * after sd-bus has checked it is a well-formed a{sv}. */
                if (!streq_ptr(sd_bus_message_get_signature(answer, true), "a{sv}"))
                        r = sd_bus_message_append(reply, "a{sv}", 2, "State", "s", "error", "Error", "s",
                                                  "unexpected reply signature");
                else
                        r = sd_bus_message_copy(reply, answer, true);
        } else
                r = sd_bus_message_append(reply, "a{sv}", 2, "State", "s", "unreachable", "Error", "s",
                                          e ? (e->message ?: e->name) : "no reply");
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int info_query_build_reply(InfoQuery *q, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(q->request, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "s", BERTH_VERSION);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ssa{sv})");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'r', "ssa{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "ss", "broker", BERTH_BROKER_NAME);
        if (r < 0)
                return r;
        r = bus_append_service_status(reply, "running");
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        for (size_t i = 0; i < N_INTERNAL; i++) {
                r = append_service(reply, i, q->replies[i]);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(reply);
        return 0;
}

static int info_query_finish(InfoQuery *q) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = info_query_build_reply(q, &reply);
        if (r < 0) {
                /* The caller must still get an answer. */
                log_warning_errno(r, "Failed to build GetInfo reply: %m");
                return sd_bus_reply_method_errno(q->request, r, NULL);
        }
        return sd_bus_send(NULL, reply, NULL);
}

static int on_service_reply(sd_bus_message *answer, void *userdata, sd_bus_error *ret_error) {
        InfoSlot *s = userdata;
        InfoQuery *q = s->query;

        q->replies[s->index] = sd_bus_message_ref(answer);
        return 0;
}

static void info_query_release(InfoQuery *q) {
        if (--q->pending > 0)
                return;
        (void) info_query_finish(q);
        info_query_free(q);
}

static void info_slot_destroy(void *userdata) {
        InfoSlot *s = userdata;
        InfoQuery *q = s->query;

        /* Runs once per internal call, after its reply or when the bus goes away. */
        free(s);
        info_query_release(q);
}

static int get_info_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        InfoQuery *q;
        int r;

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->request = sd_bus_message_ref(m);
        /* Hold one extra count while dispatching so a synchronous failure cannot finish early. */
        q->pending = 1;

        for (size_t i = 0; i < N_INTERNAL; i++) {
                _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
                InfoSlot *s = calloc(1, sizeof(*s));

                if (!s) {
                        r = -ENOMEM;
                        break;
                }
                *s = (InfoSlot){ .query = q, .index = i };
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;

                r = internal_new_call(manager, internal_services[i], &call, "GetInfo");
                if (r >= 0)
                        r = internal_call_send(manager, call, &slot, 0, on_service_reply, s);
                if (r < 0) {
                        free(s);
                        log_debug_errno(r, "Failed to call %s: %m", internal_services[i]->bus_name);
                        continue;
                }
                q->pending++;
                (void) sd_bus_slot_set_destroy_callback(slot, info_slot_destroy);
                (void) sd_bus_slot_set_floating(slot, true);
        }

        info_query_release(q); /* drops the dispatch count */
        return 1;
}

int method_get_info(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return broker_authorize(m, NULL, get_info_authorized, userdata, NULL, 0, NULL, error);
}
