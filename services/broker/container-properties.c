/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who may read a container object's properties, and who hears about its changes.
 *
 * SECURITY: a container's properties (its name, image, options with command and environment, state) are
 * the owner's business. sd-bus answers org.freedesktop.DBus.Properties itself and a property getter
 * cannot wait for polkit, so a bus filter looks at every Properties call on a container object first:
 * the owner and root are answered by sd-bus as usual; anyone else needs org.berth.container-manage-any
 * (asked asynchronously; the reply is built here), else AccessDenied. PropertiesChanged is not broadcast:
 * it goes as unicast copies to the connections of the owner and root that read the container
 * (owner-signal.c), so other users cannot follow it by adding a match rule. */
#include <string.h>

#include "broker-containers.h"
#include "bus-error.h"
#include "bus-names.h"
#include "bus-polkit.h"
#include "bus-properties.h"
#include "bus-util.h"
#include "log.h"
#include "macro.h"
#include "owner-signal.h"

#define PROPERTIES_IFACE "org.freedesktop.DBus.Properties"

static const char *const changing_properties[] = { "Status", "Pid",          "ExitCode",
                                                   "Reason", "StartedAt",    "FinishedAt",
                                                   "Health", "RestartCount", NULL };

/* The properties, from the vtable (the one list of them). */
static const char *property_name(size_t i) {
        for (const sd_bus_vtable *v = broker_container_vtable; v->type != _SD_BUS_VTABLE_END; v++)
                if (v->type == _SD_BUS_VTABLE_PROPERTY && i-- == 0)
                        return v->x.property.member;
        return NULL;
}

static const char *property_signature(const char *name) {
        for (const sd_bus_vtable *v = broker_container_vtable; v->type != _SD_BUS_VTABLE_END; v++)
                if ((v->type == _SD_BUS_VTABLE_PROPERTY || v->type == _SD_BUS_VTABLE_WRITABLE_PROPERTY) &&
                    streq(v->x.property.member, name))
                        return v->x.property.signature;
        return NULL;
}

static int property_append(sd_bus_message *m, const char *name, void *object, sd_bus_error *error) {
        return container_property_append(object, name, m);
}

static const PropertyTable container_properties = {
        .interface = BERTH_BROKER_CONTAINER_IFACE,
        .name = property_name,
        .signature = property_signature,
        .append = property_append,
};

/* ---- reads by someone else than the owner or root ---------------------------------------------------- */

static int reply_properties(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *manager = userdata;
        ContainerRecord *c = container_from_path(manager, sd_bus_message_get_path(m));

        if (!c)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No such container.");
        (void) owner_signals_subscribe(manager->owner_signals, m, c->owner);
        return property_table_reply(m, &container_properties, c, error);
}

static int on_message(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        Manager *manager = userdata;
        ContainerRecord *c;
        uid_t uid;
        int r;

        if (!sd_bus_message_is_method_call(m, PROPERTIES_IFACE, NULL))
                return 0;
        c = container_from_path(manager, sd_bus_message_get_path(m));
        if (!c)
                return 0; /* not a container, or none: sd-bus answers */
        if (bus_message_sender_uid(m, &uid) < 0) {
                (void) sd_bus_reply_method_errorf(m, BERTH_ERROR_ACCESS_DENIED,
                                                  "Cannot establish the caller's identity.");
                return 1;
        }
        if (uid == 0 || uid == c->owner) {
                /* Root hears about every container, the owner about theirs. */
                (void) owner_signals_subscribe(manager->owner_signals, m, uid);
                return 0;
        }
        if (!sd_bus_message_is_method_call(m, PROPERTIES_IFACE, "Get") &&
            !sd_bus_message_is_method_call(m, PROPERTIES_IFACE, "GetAll")) {
                (void) sd_bus_reply_method_errorf(m, BERTH_ERROR_ACCESS_DENIED,
                                                  "Container %s belongs to another user.", c->id);
                return 1;
        }
        const char *details[] = { "id", c->id, "name", c->name, NULL };
        r = bus_polkit_check_async(m, BERTH_ACTION_CONTAINER_MANAGE_ANY, details, reply_properties, manager,
                                   &error);
        if (r < 0)
                (void) bus_reply_errno(m, r, &error);
        return 1;
}

int container_properties_register(Manager *m) {
        int r;

        r = owner_signals_new(m->bus, &m->owner_signals);
        if (r < 0)
                return log_error_errno(r, "Failed to set up owner signals: %m");
        r = sd_bus_add_filter(m->bus, &m->containers->properties_filter, on_message, m);
        if (r < 0)
                return log_error_errno(r, "Failed to filter property reads of containers: %m");
        return 0;
}

/* ---- PropertiesChanged ---------------------------------------------------------------------------------
 */

static int append_changed(sd_bus_message *sig, void *userdata) {
        return property_table_append_changed(sig, &container_properties, changing_properties, userdata);
}

void container_emit_changed(Manager *m, ContainerRecord *c) {
        _cleanup_free_ char *path = container_object_path(c->id);

        if (!path || c->creating)
                return;
        (void) owner_signals_emit(m->owner_signals, c->owner, path, PROPERTIES_IFACE, "PropertiesChanged",
                                  append_changed, c);
}
