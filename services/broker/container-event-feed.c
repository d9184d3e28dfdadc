/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The supervisor's container events into the broker's ring (container-event-feed.h). */
#include <glib.h>

#include "broker-containers.h"
#include "bus-names.h"
#include "container-event-feed.h"
#include "container-store.h"
#include "event-record.h"
#include "event-ring.h"
#include "events.h"
#include "log.h"
#include "supervisor-client.h"

typedef struct Feed {
        sd_bus_slot *signal_match;
        sd_bus_slot *read_slot; /* ReadEvents in flight */
        bool read_again;
        bool read_holds_subscribers; /* the read in flight is the start-up one */
        GQueue ahead;                /* Ahead*, by seq */
} Feed;

static Feed *feed;

#define FEED_AHEAD_MAX 64U

static bool action_known(const char *action) {
        return g_strv_contains(
                (const char *const[]){ "start", "pause", "unpause", "oom", "die", "health_status", NULL },
                action);
}

static bool attr_known(const char *key) {
        return g_strv_contains((const char *const[]){ "exitCode", "reason", "healthStatus", NULL }, key);
}

/* Reads the a{ss} of one event into attrs (key, value, …, NULL; borrowed from msg). */
static int read_attrs(sd_bus_message *msg, const char **attrs, size_t max_pairs) {
        size_t n = 0;
        int r;

        r = sd_bus_message_enter_container(msg, 'a', "{ss}");
        if (r < 0)
                return r;
        for (;;) {
                const char *k, *v;

                r = sd_bus_message_read(msg, "{ss}", &k, &v);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (n >= max_pairs || !attr_known(k) || !berth_event_field_valid(v) || strlen(v) > 64)
                        return -EBADMSG;
                attrs[2 * n] = k;
                attrs[2 * n + 1] = v;
                n++;
        }
        attrs[2 * n] = NULL;
        return sd_bus_message_exit_container(msg);
}

/* One event after its seq and time: action, id, name, owner, attributes. Checks it and returns it with the
 * broker's own view of the container. */
static int read_event(Manager *m, sd_bus_message *msg, uint64_t time_usec, BerthEvent **ret) {
        const char *action, *id, *name, *attrs[2 * (BERTH_EVENT_ATTRS_MAX - 1) + 1];
        const char *all[2 * BERTH_EVENT_ATTRS_MAX + 1];
        const ContainerRecord *c;
        const Tombstone *t;
        uint32_t owner;
        size_t n = 0;
        int r;

        r = sd_bus_message_read(msg, "sssu", &action, &id, &name, &owner);
        if (r >= 0)
                r = read_attrs(msg, attrs, BERTH_EVENT_ATTRS_MAX - 1);
        if (r < 0)
                return r;
        if (!action_known(action) || !container_id_valid(id) || !berth_event_field_valid(name) ||
            strlen(name) > CONTAINER_NAME_MAX)
                return -EBADMSG;
        /* The broker's record says whose it is and what it runs; the supervisor's word (which came from the
         * broker's CreateContainer) only for a container the broker no longer has. */
        c = container_store_get(m->containers->store, id);
        t = c ? NULL : container_tombstone_get(m, id);
        all[n++] = "image";
        all[n++] = c ? c->image : "";
        for (size_t i = 0; attrs[i]; i++)
                all[n++] = attrs[i];
        all[n] = NULL;
        if (c)
                owner = (uint32_t) c->owner;
        else if (t)
                owner = (uint32_t) t->owner;
        return berth_event_new(time_usec, "container", action, id, c ? c->name : name, owner, all, ret);
}

static void ingest(Manager *m, uint64_t seq, const BerthEvent *e) {
        broker_event_ingest(m, seq, e->time_usec, e->action, e->id, e->name, e->owner,
                            (const char *const *) e->attrs);
}

/* Signals that came ahead of one still missing (a read brings it): taken as soon as they are next, so that
 * what the broker does on the ContainerChanged that follows (stop, destroy) comes after them. */
typedef struct Ahead {
        uint64_t seq;
        BerthEvent *event;
} Ahead;

static void ahead_free(void *p) {
        Ahead *a = p;

        berth_event_free(a->event);
        free(a);
}

static void take_ahead(Manager *m) {
        while (!g_queue_is_empty(&feed->ahead)) {
                Ahead *a = g_queue_peek_head(&feed->ahead);

                if (a->seq > broker_events_feed_seq() + 1)
                        return;
                g_queue_pop_head(&feed->ahead);
                ingest(m, a->seq, a->event); /* dropped there when not past the cursor */
                ahead_free(a);
        }
}

static void keep_ahead(uint64_t seq, BerthEvent *e) {
        Ahead *a;

        /* Bounded; in order of seq (signals come in order). What does not fit, the read brings. */
        if (feed->ahead.length >= FEED_AHEAD_MAX ||
            (!g_queue_is_empty(&feed->ahead) && ((Ahead *) g_queue_peek_tail(&feed->ahead))->seq >= seq) ||
            !(a = calloc(1, sizeof(*a)))) {
                berth_event_free(e);
                return;
        }
        a->seq = seq;
        a->event = e;
        g_queue_push_tail(&feed->ahead, a);
}

static bool from_supervisor(Manager *m, sd_bus_message *msg) {
        const char *owner = m->containers ? m->containers->supervisor_owner : NULL;

        return owner && streq_ptr(sd_bus_message_get_sender(msg), owner);
}

static int on_read_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Manager *m = userdata;
        bool held = feed->read_holds_subscribers;
        const char *ring;
        uint64_t last = 0;
        unsigned count = 0;
        int r;

        feed->read_slot = sd_bus_slot_unref(feed->read_slot);
        feed->read_holds_subscribers = false;
        if (sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);

                log_warning("Cannot read the supervisor's event journal: %s", strna(e ? e->message : NULL));
                goto done;
        }
        r = sd_bus_message_read(reply, "s", &ring);
        if (r < 0 || !event_ring_id_valid(ring)) {
                log_warning("The supervisor's event journal has an invalid id: ignored.");
                goto done;
        }
        if (!streq(ring, broker_events_feed_ring())) {
                broker_events_feed_restart(m, ring);
                g_queue_clear_full(&feed->ahead, ahead_free); /* of another ring */
        }
        r = sd_bus_message_enter_container(reply, 'a', "(ttsssua{ss})");
        while (r >= 0) {
                uint64_t seq, time_usec;

                r = sd_bus_message_enter_container(reply, 'r', "ttsssua{ss}");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(reply, "tt", &seq, &time_usec);
                /* In order, each once, and no more than its ring holds. */
                if (r >= 0 && (seq <= last || ++count > CONTAINER_EVENT_FEED_MAX))
                        r = -EBADMSG;
                if (r >= 0) {
                        _cleanup_(berth_event_freep) BerthEvent *e = NULL;

                        r = read_event(m, reply, time_usec, &e);
                        if (r >= 0)
                                ingest(m, seq, e);
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                last = seq;
        }
        take_ahead(m);
        if (r < 0)
                log_warning_errno(r, "Cannot parse the supervisor's event journal: %m");
done:
        if (held)
                broker_events_catch_up_end(m);
        if (feed->read_again) {
                feed->read_again = false;
                container_event_feed_read(m);
        }
        return 0;
}

static int read_start(Manager *m) {
        const char *ring = broker_events_feed_ring();

        return supervisor_call(m, &feed->read_slot, 0, on_read_reply, m, "ReadEvents", "stt", ring,
                               isempty(ring) ? UINT64_C(0) : broker_events_feed_seq(), UINT64_C(0));
}

void container_event_feed_read(Manager *m) {
        int r;

        if (!feed)
                return;
        if (feed->read_slot) {
                feed->read_again = true;
                return;
        }
        r = read_start(m);
        if (r < 0)
                log_warning_errno(r, "Cannot ask the supervisor for its events: %m");
}

static int on_event(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(berth_event_freep) BerthEvent *e = NULL;
        Manager *m = userdata;
        const char *ring;
        uint64_t seq, time_usec;
        int r;

        /* Anyone may send a signal of this name to us: from another sender it only prompts a read of the
         * journal, which is the supervisor's answer. */
        if (!from_supervisor(m, msg)) {
                container_event_feed_read(m);
                return 0;
        }
        r = sd_bus_message_read(msg, "stt", &ring, &seq, &time_usec);
        if (r >= 0)
                r = read_event(m, msg, time_usec, &e);
        if (r < 0) {
                log_warning_errno(r, "Ignoring an invalid Event from the supervisor: %m");
                return 0;
        }
        if (!streq(ring, broker_events_feed_ring())) {
                /* Another journal: the read says which, and brings it. */
                container_event_feed_read(m);
                return 0;
        }
        if (seq <= broker_events_feed_seq())
                return 0; /* a read brought it already */
        if (seq == broker_events_feed_seq() + 1) {
                ingest(m, seq, e);
                take_ahead(m);
                return 0;
        }
        /* One before it is missing: the journal has it. */
        keep_ahead(seq, TAKE_PTR(e));
        container_event_feed_read(m);
        return 0;
}

int container_event_feed_setup(Manager *m) {
        int r;

        feed = calloc(1, sizeof(*feed));
        if (!feed)
                return log_oom();
        g_queue_init(&feed->ahead);
        r = sd_bus_match_signal(m->bus, &feed->signal_match, NULL, BERTH_SUPERVISOR_PATH,
                                BERTH_SUPERVISOR_IFACE, "Event", on_event, m);
        if (r < 0)
                return log_error_errno(r, "Failed to subscribe to the supervisor's events: %m");
        /* Without container records there is nothing the supervisor can tell of (and no reason to start it):
         * every container is created, and removed, through us. */
        if (container_store_count(m->containers->store) == 0)
                return 0;
        r = read_start(m);
        if (r < 0) {
                log_warning_errno(r, "Cannot ask the supervisor for its events: %m");
                return 0;
        }
        feed->read_holds_subscribers = true;
        broker_events_catch_up_begin();
        return 0;
}

void container_event_feed_free(Manager *m) {
        if (!feed)
                return;
        feed->signal_match = sd_bus_slot_unref(feed->signal_match);
        feed->read_slot = sd_bus_slot_unref(feed->read_slot);
        g_queue_clear_full(&feed->ahead, ahead_free);
        free(feed);
        feed = NULL;
}
