/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "bus-call.h"
#include "macro.h"

bool bus_member_carries_secret(const char *member) {
        /* Login(registry, username, secret) on the broker's and the fetcher's interfaces. */
        return streq_ptr(member, "Login");
}

int bus_message_new_method_callv(sd_bus *bus, sd_bus_message **ret, const char *destination,
                                 const char *path, const char *interface, const char *member,
                                 const char *types, va_list ap) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, destination, path, interface, member);
        if (r < 0)
                return r;
        /* SECURITY: a call that carries a secret (berthctl → broker → fetcher Login) is marked sensitive
         * before the secret is appended, so sd-bus wipes its memory when the message is freed. The
         * receiving side marks its copy through SD_BUS_VTABLE_SENSITIVE on the method. */
        if (bus_member_carries_secret(member)) {
                r = sd_bus_message_sensitive(m);
                if (r < 0)
                        return r;
        }
        if (!isempty(types)) {
                r = sd_bus_message_appendv(m, types, ap);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(m);
        return 0;
}
