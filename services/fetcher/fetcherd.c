/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "bus-names.h"
#include "bus-util.h"
#include "log.h"

typedef struct Manager {
        sd_bus *bus;
        sd_event *event;
} Manager;

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        /* Every method checks bus_require_broker() first: this service serves the broker only. */
        SD_BUS_METHOD_WITH_NAMES("GetInfo", "", SD_BUS_PARAM(), "a{sv}", SD_BUS_PARAM(info),
                                 bus_method_internal_get_info, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

static int manager_setup(sd_bus *bus, sd_event *event, void *userdata) {
        Manager *m = userdata;
        int r;

        m->bus = bus;
        m->event = event;
        r = sd_bus_add_object_vtable(bus, NULL, BERTH_FETCHER_PATH, BERTH_FETCHER_IFACE, manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to publish %s: %m", BERTH_FETCHER_PATH);
        return 0;
}

int main(int argc, char *argv[]) {
        Manager manager = {};
        const BusService svc = {
                .program = "berth-fetcher",
                .bus_name = BERTH_FETCHER_NAME,
                .description = "Registry client: resolves references and fetches verified blobs into the content store.",
                .setup = manager_setup,
                .userdata = &manager,
        };

        return bus_service_main(&svc, argc, argv);
}
