/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The container commands' calls to the broker (container-cli.h): resolving a name to its object, calling
 * a method on it, waiting for its exit. */
#include <stdio.h>
#include <string.h>

#include "berth-flags.h"
#include "berthctl.h"
#include "bus-names.h"
#include "bus-util.h"
#include "container-cli.h"

const char *container_id_from_path(const char *path) {
        const char *slash = strrchr(path, '/');

        return slash ? slash + 1 : path;
}

int container_exit_status(int32_t exit_code) {
        if (exit_code < 0)
                return 255;
        return exit_code & 0xff;
}

int container_resolve(sd_bus *bus, const char *name, const char *what, char **ret_path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r;

        r = broker_call(bus, "GetContainer", &reply, what, "s", name);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return report_bus_error(what, NULL, r);
        *ret_path = strdup(path);
        return *ret_path ? 0 : -ENOMEM;
}

int container_call(sd_bus *bus, const char *path, const char *member, sd_bus_message **reply,
                   const char *what, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        va_start(ap, types);
        r = bus_message_new_method_callv(bus, &m, BERTH_BROKER_NAME, path, BERTH_BROKER_CONTAINER_IFACE,
                                         member, types, ap);
        va_end(ap);
        if (r < 0)
                return report_bus_error(what, NULL, r);
        return broker_send(bus, m, broker_default_timeout(), reply, what);
}

int container_wait_async(sd_bus *bus, const char *path, sd_bus_message_handler_t cb, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, BERTH_BROKER_NAME, path, BERTH_BROKER_CONTAINER_IFACE,
                                           "Wait");
        /* The exit status is all an attached run or a followed log needs: a --rm container's removal
         * goes on after it (the broker always finishes it). */
        if (r >= 0)
                r = sd_bus_message_append(m, "t", WAIT_FLAG_EXIT_ONLY);
        if (r < 0)
                return r;
        /* UINT64_MAX: no timeout; a container may run for days. */
        return sd_bus_call_async(bus, NULL, m, cb, userdata, UINT64_MAX);
}
