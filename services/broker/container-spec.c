/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Container.GetSpec: the summary of the runtime spec the container really runs with, read from the
 * config.json the supervisor wrote in its state directory (GetContainerSpec), not rebuilt from the
 * options. The supervisor's bytes are handled as untrusted (spec-summary.c). */
#include <stdlib.h>

#include "broker-containers.h"
#include "bus-error.h"
#include "bus-names.h"
#include "bus-util.h"
#include "log.h"
#include "macro.h"
#include "spec-summary.h"
#include "supervisor-client.h"

static int on_spec(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *request = userdata;
        _cleanup_free_ char *json = NULL, *msg = NULL;
        const void *data;
        size_t size;
        int r;

        if (sd_bus_message_is_method_error(reply, NULL))
                return bus_reply_internal_error(request, sd_bus_message_get_error(reply),
                                                "Reading the container's runtime spec");
        r = sd_bus_message_read_array(reply, 'y', &data, &size);
        if (r < 0 || size > SPEC_SUMMARY_INPUT_MAX)
                return sd_bus_reply_method_errorf(request, BERTH_ERROR_BAD_CONTENT,
                                                  "The supervisor sent no usable runtime spec.");
        r = spec_summary_build(data, size, &json, &msg);
        if (r < 0) {
                log_warning("Runtime spec from the supervisor refused: %s", strna(msg));
                return sd_bus_reply_method_errorf(request, BERTH_ERROR_BAD_CONTENT,
                                                  "The container's runtime spec is not usable: %s",
                                                  strna(msg));
        }
        return sd_bus_reply_method_return(request, "s", json);
}

int container_get_spec_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error) {
        uint64_t flags;
        int r;

        r = container_read_flags(m, 0, &flags, error);
        if (r < 0)
                return r;
        r = supervisor_call(manager, NULL, 0, on_spec, m, "GetContainerSpec", "st", c->id, UINT64_C(0));
        if (r < 0)
                return internal_error_unreachable(&internal_supervisor, r, error);
        sd_bus_message_ref(m); /* released by on_spec */
        return 1;
}
