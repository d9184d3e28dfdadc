/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Networks: CNI conflists under /etc/berth/net.d/ that the supervisor owns. The broker authorises and
 * forwards; it keeps no state about them. */
#include "broker-networks.h"
#include "bus-error.h"
#include "bus-names.h"
#include "bus-util.h"
#include "internal-call.h"
#include "log.h"
#include "supervisor-client.h"

static int pass_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *request = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *out = NULL;
        int r;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                (void) bus_reply_internal_error(request, sd_bus_message_get_error(reply), "The network");
                return 0;
        }
        /* The supervisor's reply has the public method's signature: copied as it is. */
        r = sd_bus_message_new_method_return(request, &out);
        if (r >= 0)
                r = sd_bus_message_copy(out, reply, true);
        if (r >= 0)
                r = sd_bus_send(NULL, out, NULL);
        if (r < 0)
                (void) sd_bus_reply_method_errorf(request, BERTH_ERROR_IO,
                                                  "Malformed reply from the supervisor.");
        return 0;
}

/* The continuation re-reads the arguments from the message (they were validated by the bus types; the
 * supervisor validates their values) and forwards them with the same signature. */
static int forward_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        const char *member = sd_bus_message_get_member(m);
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = supervisor_new_call(manager, &call, member);
        if (r >= 0)
                r = sd_bus_message_copy(call, m, true);
        if (r < 0)
                return r;
        r = internal_call_send(manager, call, NULL, 0, pass_reply, sd_bus_message_ref(m));
        if (r < 0) {
                sd_bus_message_unref(m);
                return internal_error_unreachable(&internal_supervisor, r, error);
        }
        return 1;
}

static int forward_method(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *name = NULL;
        int r;

        /* Most take the network name first: a polkit detail. */
        if (!streq_ptr(sd_bus_message_get_member(m), "ListNetworks")) {
                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        return r;
        }
        const char *details[] = { "network", name, NULL };
        return broker_authorize(m, name ? details : NULL, forward_authorized, userdata, NULL, 0, NULL,
                                error);
}

int method_create_network(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return forward_method(m, userdata, error);
}

int method_remove_network(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return forward_method(m, userdata, error);
}

int method_list_networks(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return forward_method(m, userdata, error);
}

int method_inspect_network(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return forward_method(m, userdata, error);
}

int broker_container_network(Manager *m, sd_bus_message *request, const char *id) {
        int r = supervisor_call(m, NULL, 0, pass_reply, sd_bus_message_ref(request), "GetContainerNetwork",
                                "s", id);
        if (r < 0) {
                sd_bus_message_unref(request);
                return internal_reply_unreachable(request, &internal_supervisor, r);
        }
        return 1;
}
