/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "broker-containers.h"
#include "container-event-feed.h"
#include "events.h"
#include "broker.h"
#include "bus-names.h"
#include "bus-util.h"
#include "config.h"
#include "image-store.h"
#include "log.h"
#include "owner-signal.h"
#include "pull.h"
#include "transfer.h"

/* Who owns the fetcher's name now, as the bus daemon says: a pull that restarted the fetcher accepts the
 * new instance's Progress before its first reply (pull.c). Only berth-fetcher may own the name (bus
 * policy), so the daemon's word identifies the fetcher. */
static int on_fetcher_owner_changed(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *name, *old_owner, *new_owner;
        char *s = NULL;

        if (sd_bus_message_read(msg, "sss", &name, &old_owner, &new_owner) < 0 ||
            !streq(name, BERTH_FETCHER_NAME))
                return 0;
        if (!isempty(new_owner) && !(s = strdup(new_owner)))
                return 0;
        free(m->fetcher_owner);
        m->fetcher_owner = s;
        return 0;
}

static int manager_setup(sd_bus *bus, sd_event *event, void *userdata) {
        Manager *m = userdata;
        const char *e;
        int r;

        m->bus = bus;
        m->event = event;
        m->transfers = g_hash_table_new(g_direct_hash, g_direct_equal);

        /* Tests point this elsewhere; the service itself uses the compiled-in path. */
        e = getenv("BERTH_STATE_DIR");
        m->state_dir = strdup(!isempty(e) ? e : BERTH_STATEDIR);
        if (!m->state_dir)
                return log_oom();
        r = image_store_open(m->state_dir, &m->images);
        if (r < 0)
                return log_error_errno(r, "Failed to open the image metadata under '%s/meta': %m",
                                       m->state_dir);

        /* The fetcher's Progress signals are unicast to us; which transfer, and whether the sender is
         * the fetcher instance that transfer talks to, is decided per signal in pull.c. */
        r = sd_bus_match_signal(bus, &m->progress_match, NULL, BERTH_FETCHER_PATH, BERTH_FETCHER_IFACE,
                                "Progress", pull_on_fetcher_progress, m);
        if (r < 0)
                return log_error_errno(r, "Failed to subscribe to the fetcher's progress: %m");

        /* arg0 filtered at the bus: any other name's changes would wake us (and reset the idle timer). */
        r = sd_bus_add_match(
                bus, &m->fetcher_owner_match,
                "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" BERTH_FETCHER_NAME "'",
                on_fetcher_owner_changed, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the fetcher's bus name: %m");
        r = broker_events_setup(m);
        if (r < 0)
                return r;
        r = container_manager_setup(m);
        if (r < 0)
                return r;
        r = container_event_feed_setup(m);
        if (r < 0)
                return r;
        r = container_objects_register(m);
        if (r < 0)
                return r;
        r = container_properties_register(m);
        if (r < 0)
                return r;

        r = sd_bus_add_object_vtable(bus, NULL, BERTH_BROKER_PATH, BERTH_BROKER_MANAGER_IFACE,
                                     broker_manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to publish %s: %m", BERTH_BROKER_PATH);
        return 0;
}

static void manager_shutdown(void *userdata) {
        Manager *m = userdata;

        manager_free_transfers(m);
        container_event_feed_free(m);
        container_manager_free(m);
        broker_events_free(m);
        m->owner_signals = owner_signals_free(m->owner_signals);
        m->progress_match = sd_bus_slot_unref(m->progress_match);
        m->fetcher_owner_match = sd_bus_slot_unref(m->fetcher_owner_match);
        m->fetcher_owner = mfree(m->fetcher_owner);
        m->images = image_store_free(m->images);
        free(m->state_dir);
}

/* Idle exit must not cost anybody anything: a transfer object lives (running, then lingering for
 * late readers) only in this process, so any transfer keeps us. Everything else the broker knows is
 * on disk; calls it awaits (polkit, the internal services) keep it through bus_has_pending_calls(). */
static bool manager_busy(void *userdata) {
        Manager *m = userdata;

        /* Connections subscribed to their objects' signals would lose the subscription with us. */
        return (m->transfers && g_hash_table_size(m->transfers) > 0) || broker_events_busy() ||
               owner_signals_busy(m->owner_signals);
}

int main(int argc, char *argv[]) {
        Manager manager = {};
        const BusService svc = {
                .program = "berth-broker",
                .bus_name = BERTH_BROKER_NAME,
                .description = "The public door of berth: authorises callers with polkit, keeps image and "
                               "container metadata, and orchestrates the fetcher, unpacker and supervisor.",
                .setup = manager_setup,
                .shutdown = manager_shutdown,
                .busy = manager_busy,
                .config_file = "broker.conf",
                .config_group = "broker",
                .userdata = &manager,
        };

        return bus_service_main(&svc, argc, argv);
}
