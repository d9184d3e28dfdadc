/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "berth-limits.h"
#include "bus-names.h"
#include "bus-util.h"
#include "internal-call.h"

const InternalService internal_fetcher = {
        .name = "fetcher",
        .bus_name = BERTH_FETCHER_NAME,
        .path = BERTH_FETCHER_PATH,
        .iface = BERTH_FETCHER_IFACE,
};

const InternalService internal_unpacker = {
        .name = "unpacker",
        .bus_name = BERTH_UNPACKER_NAME,
        .path = BERTH_UNPACKER_PATH,
        .iface = BERTH_UNPACKER_IFACE,
};

const InternalService internal_supervisor = {
        .name = "supervisor",
        .bus_name = BERTH_SUPERVISOR_NAME,
        .path = BERTH_SUPERVISOR_PATH,
        .iface = BERTH_SUPERVISOR_IFACE,
};

int internal_new_call(Manager *m, const InternalService *s, sd_bus_message **ret, const char *member) {
        return sd_bus_message_new_method_call(m->bus, ret, s->bus_name, s->path, s->iface, member);
}

int internal_call_send(Manager *m, sd_bus_message *call, sd_bus_slot **ret_slot, uint64_t timeout_usec,
                       sd_bus_message_handler_t cb, void *userdata) {
        /* SECURITY: the destination is always one of the three well-known names, whose bus policy lets
         * only berth-broker call them; each reply is checked by its reader as if hostile. */
        return sd_bus_call_async(m->bus, ret_slot, call, cb, userdata,
                                 timeout_usec ?: BUS_INTERNAL_TIMEOUT_USEC);
}

int internal_callv(Manager *m, const InternalService *s, sd_bus_slot **ret_slot, uint64_t timeout_usec,
                   sd_bus_message_handler_t cb, void *userdata, const char *member, const char *types,
                   va_list ap) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r;

        r = bus_message_new_method_callv(m->bus, &call, s->bus_name, s->path, s->iface, member, types, ap);
        if (r < 0)
                return r;
        return internal_call_send(m, call, ret_slot, timeout_usec, cb, userdata);
}

int internal_error_unreachable(const InternalService *s, int r, sd_bus_error *error) {
        return sd_bus_error_setf(error, BERTH_ERROR_SERVICE_UNAVAILABLE, "Cannot reach the berth %s: %s",
                                 s->name, strerror(r < 0 ? -r : r));
}

int internal_reply_unreachable(sd_bus_message *request, const InternalService *s, int r) {
        return sd_bus_reply_method_errorf(request, BERTH_ERROR_SERVICE_UNAVAILABLE,
                                          "Cannot reach the berth %s: %s", s->name,
                                          strerror(r < 0 ? -r : r));
}
