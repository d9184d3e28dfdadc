/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "bus-properties.h"
#include "macro.h"

static int append_value(sd_bus_message *m, const PropertyTable *t, const char *name, void *object,
                        sd_bus_error *error) {
        const char *sig = t->signature(name);
        int r;

        if (!sig)
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "Unknown property '%s'.",
                                         name);
        r = sd_bus_message_open_container(m, 'v', sig);
        if (r >= 0)
                r = t->append(m, name, object, error);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

/* A dictionary of names (NULL: every property) and their values. */
static int append_dict(sd_bus_message *m, const PropertyTable *t, const char *const *names, void *object,
                       sd_bus_error *error) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        for (size_t i = 0; r >= 0; i++) {
                const char *name = names ? names[i] : t->name(i);

                if (!name)
                        break;
                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", name);
                if (r >= 0)
                        r = append_value(m, t, name, object, error);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

int property_table_reply(sd_bus_message *m, const PropertyTable *t, void *object, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *iface, *name = NULL;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &iface);
        if (r >= 0 && sd_bus_message_is_method_call(m, "org.freedesktop.DBus.Properties", "Get"))
                r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        if (!isempty(iface) && !streq(iface, t->interface))
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_INTERFACE, "Unknown interface '%s'.",
                                         iface);
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = name ? append_value(reply, t, name, object, error) : append_dict(reply, t, NULL, object, error);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int property_table_append_changed(sd_bus_message *sig, const PropertyTable *t, const char *const *names,
                                  void *object) {
        int r;

        r = sd_bus_message_append(sig, "s", t->interface);
        if (r >= 0)
                r = append_dict(sig, t, names, object, NULL);
        if (r >= 0)
                r = sd_bus_message_append(sig, "as", 0);
        return r;
}
