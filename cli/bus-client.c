/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>

#include "berthctl.h"
#include "bus-error.h"
#include "bus-names.h"
#include "bus-util.h"
#include "escape.h"
#include "polkit-agent.h"

int broker_connect(sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_open_system_with_description(&bus, "berthctl");
        if (r < 0) {
                fprintf(stderr, "berthctl: cannot connect to the system bus: %s\n", strerror(-r));
                return r;
        }
        r = polkit_agent_setup_bus(bus, arg.ask_password);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(bus);
        return 0;
}

int report_bus_error(const char *what, const sd_bus_error *error, int r) {
        const char *name = error ? error->name : NULL;
        /* Error texts may quote what a registry sent: never let them drive the terminal. */
        _cleanup_free_ char *msg = escape_untrusted(
                error && error->message ? error->message : strerror(r < 0 ? -r : EIO), 0, 0);

        if (bus_error_is_gone(error))
                fprintf(stderr, "berthctl: %s: the berth broker is not reachable (%s)\n", what, msg);
        else if (name &&
                 (streq(name, BERTH_ERROR_ACCESS_DENIED) || streq(name, SD_BUS_ERROR_ACCESS_DENIED) ||
                  streq(name, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED)))
                fprintf(stderr, "berthctl: %s: permission denied: %s\n", what, msg);
        else
                fprintf(stderr, "berthctl: %s: %s\n", what, msg);
        return r < 0 ? r : -EIO;
}

int broker_new_call(sd_bus *bus, sd_bus_message **ret, const char *member) {
        return sd_bus_message_new_method_call(bus, ret, BERTH_BROKER_NAME, BERTH_BROKER_PATH,
                                              BERTH_BROKER_MANAGER_IFACE, member);
}

uint64_t broker_default_timeout(void) {
        /* An interactive polkit prompt may take a human a while. */
        return arg.ask_password ? 10ULL * 60 * 1000000 : 0;
}

int broker_send(sd_bus *bus, sd_bus_message *m, uint64_t timeout_usec, sd_bus_message **reply,
                const char *what) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = polkit_agent_call(bus, m, timeout_usec, &error, reply);
        if (r < 0)
                return report_bus_error(what, &error, r);
        return 0;
}

int broker_callv(sd_bus *bus, const char *member, sd_bus_message **reply, const char *what,
                 uint64_t timeout_usec, const char *types, va_list ap) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = bus_message_new_method_callv(bus, &m, BERTH_BROKER_NAME, BERTH_BROKER_PATH,
                                         BERTH_BROKER_MANAGER_IFACE, member, types, ap);
        if (r < 0)
                return report_bus_error(what, NULL, r);
        return broker_send(bus, m, timeout_usec, reply, what);
}

int broker_call(sd_bus *bus, const char *member, sd_bus_message **reply, const char *what, const char *types,
                ...) {
        va_list ap;
        int r;

        va_start(ap, types);
        r = broker_callv(bus, member, reply, what, broker_default_timeout(), types, ap);
        va_end(ap);
        return r;
}

int broker_connect_call(sd_bus **bus, const char *member, sd_bus_message **reply, const char *what,
                        const char *types, ...) {
        va_list ap;
        int r;

        r = broker_connect(bus);
        if (r < 0)
                return r;
        va_start(ap, types);
        r = broker_callv(*bus, member, reply, what, broker_default_timeout(), types, ap);
        va_end(ap);
        return r;
}

bool wants_help(int argc, char *argv[]) {
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "--help") || streq(argv[i], "-h"))
                        return true;
        return false;
}

void format_bytes(char *buf, size_t size, uint64_t bytes) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
        double v = (double) bytes;
        size_t u = 0;

        while (v >= 1024.0 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024.0;
                u++;
        }
        if (u == 0)
                snprintf(buf, size, "%llu B", (unsigned long long) bytes);
        else
                snprintf(buf, size, "%.1f %s", v, units[u]);
}
