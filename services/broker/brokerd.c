/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "broker.h"
#include "bus-names.h"
#include "bus-util.h"
#include "log.h"

/* SD_BUS_VTABLE_UNPRIVILEGED marks methods any caller may reach through the bus policy; each of them
 * starts with broker_authorize(), which consults the action table in broker-auth.c. */
static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("GetInfo", "", SD_BUS_PARAM(), "sa(ssa{sv})",
                                 SD_BUS_PARAM(version) SD_BUS_PARAM(services), method_get_info,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

static int manager_setup(sd_bus *bus, sd_event *event, void *userdata) {
        Manager *m = userdata;
        int r;

        m->bus = bus;
        m->event = event;
        r = sd_bus_add_object_vtable(bus, NULL, BERTH_BROKER_PATH, BERTH_BROKER_MANAGER_IFACE, manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to publish %s: %m", BERTH_BROKER_PATH);
        return 0;
}

int main(int argc, char *argv[]) {
        Manager manager = {};
        const BusService svc = {
                .program = "berth-broker",
                .bus_name = BERTH_BROKER_NAME,
                .description = "The public door of berth: authorises callers with polkit, keeps image and "
                               "container metadata, and orchestrates the fetcher, unpacker and supervisor.",
                .setup = manager_setup,
                .userdata = &manager,
        };

        return bus_service_main(&svc, argc, argv);
}
