/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <stdlib.h>

#include "log.h"
#include "macro.h"
#include "owner-signal.h"

struct OwnerSignals {
        sd_bus *bus;
        GHashTable *tracks; /* uid (GUINT_TO_POINTER) → sd_bus_track* of its subscribed connections */
};

static void track_unref(void *p) {
        sd_bus_track_unref(p);
}

int owner_signals_new(sd_bus *bus, OwnerSignals **ret) {
        OwnerSignals *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        s->bus = sd_bus_ref(bus);
        s->tracks = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, track_unref);
        *ret = s;
        return 0;
}

OwnerSignals *owner_signals_free(OwnerSignals *s) {
        if (!s)
                return NULL;
        g_hash_table_destroy(s->tracks);
        sd_bus_unref(s->bus);
        return mfree(s);
}

int owner_signals_subscribe(OwnerSignals *s, sd_bus_message *m, uid_t owner) {
        sd_bus_track *t;
        int r;

        if (!s || !sd_bus_message_get_sender(m))
                return 0;
        t = g_hash_table_lookup(s->tracks, GUINT_TO_POINTER(owner));
        if (!t) {
                if (g_hash_table_size(s->tracks) >= OWNER_SIGNALS_OWNERS_MAX)
                        return -EUSERS;
                /* Not recursive: one entry per connection however often it reads. A name that disconnects
                 * leaves the track by itself. */
                r = sd_bus_track_new(s->bus, &t, NULL, NULL);
                if (r < 0)
                        return r;
                g_hash_table_insert(s->tracks, GUINT_TO_POINTER(owner), t);
        }
        if (sd_bus_track_contains(t, sd_bus_message_get_sender(m)))
                return 0;
        if (sd_bus_track_count(t) >= OWNER_SIGNALS_PEERS_MAX)
                return -EUSERS;
        return sd_bus_track_add_sender(t, m) < 0 ? -ENOMEM : 0;
}

bool owner_signals_busy(OwnerSignals *s) {
        GHashTableIter i;
        void *t;

        if (!s)
                return false;
        g_hash_table_iter_init(&i, s->tracks);
        while (g_hash_table_iter_next(&i, NULL, &t))
                if (sd_bus_track_count(t) > 0)
                        return true;
        return false;
}

int bus_signal_send_to(sd_bus *bus, const char *destination, const char *path, const char *interface,
                       const char *member, owner_signal_append_t append, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *sig = NULL;
        int r;

        r = sd_bus_message_new_signal(bus, &sig, path, interface, member);
        if (r >= 0)
                r = sd_bus_message_set_destination(sig, destination);
        if (r >= 0 && append)
                r = append(sig, userdata);
        if (r >= 0)
                r = sd_bus_send(bus, sig, NULL);
        return r;
}

int owner_signals_emit(OwnerSignals *s, uid_t owner, const char *path, const char *interface,
                       const char *member, owner_signal_append_t append, void *userdata) {
        const uid_t uids[] = { owner, 0 };
        int n = 0, r;

        if (!s)
                return 0;
        for (size_t u = 0; u < (owner == 0 ? 1 : 2); u++) {
                sd_bus_track *t = g_hash_table_lookup(s->tracks, GUINT_TO_POINTER(uids[u]));

                for (const char *name = t ? sd_bus_track_first(t) : NULL; name;
                     name = sd_bus_track_next(t)) {
                        r = bus_signal_send_to(s->bus, name, path, interface, member, append, userdata);
                        if (r < 0)
                                log_debug_errno(r, "Cannot send %s.%s to %s: %m", interface, member, name);
                        else
                                n++;
                }
        }
        return n;
}
