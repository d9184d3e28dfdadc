/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who may see a transfer (issue 12, finding 7). A transfer names a reference, digests and error texts
 * that belong to the users who asked for it. So:
 *  - its participants are the uids that started or joined it (a pull of the same reference by a second
 *    user joins the running one); root sees everything, nobody else anything;
 *  - Properties.Get/GetAll on its object need org.berth.info and a participant (or root): an object
 *    callback answers them before sd-bus's vtable would, and replies itself once polkit said yes;
 *  - Progress, Finished and PropertiesChanged are unicast to its watchers: the bus connections of
 *    participants that started, joined or read it (the bus daemon delivers a message with a
 *    destination only to that connection).
 * (Paths stay sequential: knowing that transfer 7 exists tells nothing once its object answers only to
 * its participants.) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <inttypes.h>

#include "broker.h"
#include "bus-names.h"
#include "bus-properties.h"
#include "bus-util.h"
#include "log.h"
#include "owner-signal.h"
#include "transfer.h"

/* Bus connections a transfer sends its signals to; the oldest is dropped beyond this. */
#define TRANSFER_WATCHERS_MAX 32U

static bool transfer_has_participant(const Transfer *t, uid_t uid) {
        if (uid == t->uid)
                return true;
        for (guint i = 0; t->participants && i < t->participants->len; i++)
                if (GPOINTER_TO_UINT(t->participants->pdata[i]) == (guint) uid)
                        return true;
        return false;
}

bool transfer_visible_to(const Transfer *t, uid_t uid) {
        return uid == 0 || transfer_has_participant(t, uid);
}

int transfer_add_watcher(Transfer *t, sd_bus_message *m) {
        const char *sender = sd_bus_message_get_sender(m);
        uid_t uid;
        int r;

        if (!sender)
                return 0; /* a direct connection, not through a bus: nobody to address */
        r = bus_message_sender_uid(m, &uid);
        if (r < 0)
                return r;
        return transfer_add_watcher_name(t, uid, sender);
}

int transfer_add_watcher_name(Transfer *t, uid_t uid, const char *sender) {
        if (!t->participants)
                t->participants = g_ptr_array_new();
        if (!t->watchers)
                t->watchers = g_ptr_array_new_with_free_func(g_free);
        if (!transfer_has_participant(t, uid))
                g_ptr_array_add(t->participants, GUINT_TO_POINTER((guint) uid));
        for (guint i = 0; i < t->watchers->len; i++)
                if (streq(t->watchers->pdata[i], sender))
                        return 0;
        if (t->watchers->len >= TRANSFER_WATCHERS_MAX)
                g_ptr_array_remove_index(t->watchers, 0);
        g_ptr_array_add(t->watchers, g_strdup(sender));
        return 1;
}

void transfer_access_done(Transfer *t) {
        if (t->watchers)
                g_ptr_array_unref(t->watchers);
        if (t->participants)
                g_ptr_array_unref(t->participants);
        t->watchers = t->participants = NULL;
        t->access_slot = sd_bus_slot_unref(t->access_slot);
}

/* ---- unicast signals ------------------------------------------------------------------------------- */

static int transfer_append_property(sd_bus_message *m, const char *name, void *object, sd_bus_error *error) {
        Transfer *t = object;

        return transfer_property_get(t->manager->bus, t->path, BERTH_BROKER_TRANSFER_IFACE, name, m, t,
                                     error);
}

static const PropertyTable transfer_properties = {
        .interface = BERTH_BROKER_TRANSFER_IFACE,
        .name = transfer_property_name,
        .signature = transfer_property_signature,
        .append = transfer_append_property,
};

typedef struct SignalArgs {
        Transfer *t;
        transfer_signal_builder_t build;
        void *userdata;
} SignalArgs;

static int append_signal(sd_bus_message *s, void *userdata) {
        SignalArgs *a = userdata;

        return a->build(a->t, s, a->userdata);
}

int transfer_send_to_watchers(Transfer *t, const char *member, transfer_signal_builder_t build,
                              void *userdata) {
        const char *iface = streq(member, "PropertiesChanged") ? "org.freedesktop.DBus.Properties"
                                                               : BERTH_BROKER_TRANSFER_IFACE;
        SignalArgs a = { t, build, userdata };
        int r, ret = 0;

        for (guint i = 0; t->watchers && i < t->watchers->len; i++) {
                r = bus_signal_send_to(t->manager->bus, t->watchers->pdata[i], t->path, iface, member,
                                       append_signal, &a);
                /* A watcher that went away is not an error of the transfer. */
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

static int build_properties_changed(Transfer *t, sd_bus_message *s, void *userdata) {
        return property_table_append_changed(s, &transfer_properties, userdata, t);
}

int transfer_emit_properties_changed(Transfer *t, const char *const *props) {
        return transfer_send_to_watchers(t, "PropertiesChanged", build_properties_changed, (void *) props);
}

/* ---- Properties.Get / GetAll ----------------------------------------------------------------------- */

typedef struct PropertiesArgs {
        uint32_t id;
} PropertiesArgs;

static int properties_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        PropertiesArgs *a = args;
        Transfer *t;
        uid_t uid;
        int r;

        /* Looked up again: it may have expired while polkit was thinking. */
        t = g_hash_table_lookup(manager->transfers, GUINT_TO_POINTER((guint) a->id));
        if (!t)
                return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_OBJECT, "No such transfer.");
        r = bus_message_sender_uid(m, &uid);
        if (r < 0 || !transfer_visible_to(t, uid))
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Transfer %" PRIu32 " belongs to another user.", t->id);
        /* A participant reading it is watching it: its signals go to this connection too. */
        (void) transfer_add_watcher(t, m);
        return property_table_reply(m, &transfer_properties, t, error);
}

/* Runs before the vtable for every message to the transfer's path. */
static int on_transfer_message(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Transfer *t = userdata;
        PropertiesArgs a = { .id = t->id };
        uid_t uid;
        int r;

        if (!sd_bus_message_is_method_call(m, "org.freedesktop.DBus.Properties", "Get") &&
            !sd_bus_message_is_method_call(m, "org.freedesktop.DBus.Properties", "GetAll"))
                return 0; /* Set finds no writable property; Introspect tells nothing; methods check */
        /* SECURITY: the owner check first (no polkit round trip for a stranger's probe), then polkit's
         * info action, as for every other read of berth's state. */
        r = bus_message_sender_uid(m, &uid);
        if (r < 0 || !transfer_visible_to(t, uid))
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Transfer %" PRIu32 " belongs to another user.", t->id);
        r = broker_authorize_action(m, BERTH_ACTION_INFO, NULL, properties_authorized, t->manager, &a,
                                    sizeof(a), NULL, error);
        if (r < 0)
                return r;
        return 1; /* answered (now or once polkit replies): the vtable must not answer too */
}

int transfer_access_attach(Transfer *t) {
        return sd_bus_add_object(t->manager->bus, &t->access_slot, t->path, on_transfer_message, t);
}
