/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <systemd/sd-bus.h>

/* org.freedesktop.DBus.Properties answered by hand, for objects whose reads wait for polkit or an owner
 * check (sd-bus's own answer cannot wait): container objects (container-properties.c) and transfers
 * (transfer-access.c). The same table builds their PropertiesChanged, which goes out unicast
 * (owner-signal.h). */

typedef struct PropertyTable {
        const char *interface;
        const char *(*name)(size_t i);              /* the i-th property; NULL past the end */
        const char *(*signature)(const char *name); /* its D-Bus type; NULL: no such property */
        /* Appends the value of name (of that type) to m. */
        int (*append)(sd_bus_message *m, const char *name, void *object, sd_bus_error *error);
} PropertyTable;

/* Replies to m, a Properties.Get or GetAll call about object (call it once the caller may read it). */
int property_table_reply(sd_bus_message *m, const PropertyTable *t, void *object, sd_bus_error *error);

/* The arguments of PropertiesChanged: t's interface, the values of names (NULL-terminated), nothing
 * invalidated. */
int property_table_append_changed(sd_bus_message *sig, const PropertyTable *t, const char *const *names,
                                  void *object);
