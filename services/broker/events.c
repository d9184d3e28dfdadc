/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The event ring and its subscribers (events.h). */
#include <glib.h>
#include <stdio.h>
#include <time.h>

#include "bus-error.h"
#include "bus-names.h"
#include "bus-polkit.h"
#include "bus-util.h"
#include "events.h"
#include "log.h"
#include "owner-signal.h"

typedef struct Event {
        uint64_t time_usec;
        char *type, *action, *id, *name;
        uid_t owner;
        char **attrs; /* key, value, …, NULL */
} Event;

typedef struct Subscriber {
        Manager *manager;
        char *name; /* unique bus name */
        uid_t uid;
        bool all_users;
        sd_bus_track *track;
} Subscriber;

typedef struct Events {
        GQueue ring;             /* Event*, oldest first */
        GHashTable *subscribers; /* unique name → Subscriber* */
} Events;

/* The Manager struct is shared by every broker file: the events hang off it through one static pointer
 * per broker (there is one Manager per process). */
static Events *events;

static void event_free(Event *e) {
        if (!e)
                return;
        free(e->type);
        free(e->action);
        free(e->id);
        free(e->name);
        g_strfreev(e->attrs);
        free(e);
}

static void subscriber_free(void *p) {
        Subscriber *s = p;

        if (!s)
                return;
        sd_bus_track_unref(s->track);
        free(s->name);
        free(s);
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000) + (uint64_t) ts.tv_nsec / 1000;
}

static bool visible(const Subscriber *s, const Event *e) {
        if (streq(e->type, EVENT_TYPE_IMAGE))
                return true;
        return s->uid == 0 || s->uid == e->owner || s->all_users;
}

static int append_event(sd_bus_message *m, const Event *e) {
        int r;

        r = sd_bus_message_append(m, "tssssu", e->time_usec, e->type, e->action, e->id, e->name,
                                  (uint32_t) e->owner);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{ss}");
        for (char **a = e->attrs; r >= 0 && a && a[0] && a[1]; a += 2)
                r = sd_bus_message_append(m, "{ss}", a[0], a[1]);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        return r;
}

static int append_event_signal(sd_bus_message *sig, void *userdata) {
        return append_event(sig, userdata);
}

static void deliver(Manager *m, const Event *e) {
        GHashTableIter it;
        Subscriber *s;

        g_hash_table_iter_init(&it, events->subscribers);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *) &s)) {
                int r;

                if (!visible(s, e))
                        continue;
                /* SECURITY: unicast, to this subscriber only (see events.h). */
                r = bus_signal_send_to(m->bus, s->name, BERTH_BROKER_PATH, BERTH_BROKER_MANAGER_IFACE,
                                       "Event", append_event_signal, (void *) e);
                if (r < 0)
                        log_debug_errno(r, "Cannot send an event to %s: %m", s->name);
        }
}

void broker_event_emit(Manager *m, const char *type, const char *action, const char *id, const char *name,
                       uid_t owner, const char *const *attrs) {
        Event *e;
        size_t n = 0;

        if (!events || !type || !action)
                return;
        e = calloc(1, sizeof(*e));
        if (!e)
                return;
        e->time_usec = now_usec();
        e->type = strdup(type);
        e->action = strdup(action);
        e->id = strdup(id ?: "");
        e->name = strdup(name ?: "");
        e->owner = owner;
        for (const char *const *a = attrs; a && a[0] && a[1] && n < EVENTS_ATTRS_MAX; a += 2)
                n++;
        e->attrs = g_new0(char *, 2 * n + 1);
        for (size_t i = 0; i < 2 * n; i++)
                e->attrs[i] = g_strdup(attrs[i]);
        if (!e->type || !e->action || !e->id || !e->name) {
                event_free(e);
                log_oom();
                return;
        }
        deliver(m, e);
        g_queue_push_tail(&events->ring, e);
        while (events->ring.length > EVENTS_RING_MAX)
                event_free(g_queue_pop_head(&events->ring));
}

/* ---- subscriptions --------------------------------------------------------------------------------- */

static int on_track_gone(sd_bus_track *track, void *userdata) {
        Subscriber *s = userdata;

        /* Removing it frees s (and its track). */
        g_hash_table_remove(events->subscribers, s->name);
        return 0;
}

static int subscribe_authorized(sd_bus_message *m, Manager *manager, bool all_users, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Subscriber *s;
        const char *sender = sd_bus_message_get_sender(m);
        uint64_t since, flags;
        uid_t uid;
        int r;

        if (!sender || bus_message_sender_uid(m, &uid) < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Cannot establish the caller's identity.");
        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_read(m, "tt", &since, &flags);
        if (r < 0)
                return r;
        /* After polkit, as every method: a caller not allowed to subscribe learns nothing more. */
        r = bus_check_flags(flags, SUBSCRIBE_EVENTS_FLAG_ALL_USERS, error);
        if (r < 0)
                return r;
        s = g_hash_table_lookup(events->subscribers, sender);
        if (!s) {
                GHashTableIter it;
                Subscriber *o;
                unsigned mine = 0;

                g_hash_table_iter_init(&it, events->subscribers);
                while (g_hash_table_iter_next(&it, NULL, (gpointer *) &o))
                        mine += o->uid == uid;
                if (g_hash_table_size(events->subscribers) >= EVENTS_SUBSCRIBERS_MAX ||
                    (uid != 0 && mine >= EVENTS_SUBSCRIBERS_PER_UID_MAX))
                        return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "Too many event subscribers.");
                s = calloc(1, sizeof(*s));
                if (!s)
                        return -ENOMEM;
                s->manager = manager;
                s->name = strdup(sender);
                if (!s->name) {
                        subscriber_free(s);
                        return -ENOMEM;
                }
                r = sd_bus_track_new(manager->bus, &s->track, on_track_gone, s);
                if (r >= 0)
                        r = sd_bus_track_add_sender(s->track, m);
                if (r < 0) {
                        subscriber_free(s);
                        return r;
                }
                g_hash_table_replace(events->subscribers, s->name, s);
        }
        s->uid = uid;
        s->all_users = all_users;

        /* The replay of what the ring holds since `since` (0: nothing), then live events as signals: the
         * reply goes out before any later signal, so nothing is missed or seen twice. */
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(tssssua{ss})");
        for (GList *l = events->ring.head; r >= 0 && l && since > 0; l = l->next) {
                const Event *e = l->data;

                if (e->time_usec < since || !visible(s, e))
                        continue;
                r = sd_bus_message_open_container(reply, 'r', "tssssua{ss}");
                if (r >= 0)
                        r = append_event(reply, e);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int subscribe_own(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        return subscribe_authorized(m, manager, false, error);
}

static int subscribe_all(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return subscribe_authorized(m, userdata, true, error);
}

int method_subscribe_events(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        uint64_t since, flags;
        int r;

        r = sd_bus_message_read(m, "tt", &since, &flags);
        if (r < 0)
                return r;
        /* Unknown flags are refused once authorised (subscribe_authorized). */
        if (flags & SUBSCRIBE_EVENTS_FLAG_ALL_USERS)
                /* SECURITY: everyone's container events: whoever may manage every container may see them. */
                return bus_error_from_errno(error,
                                            bus_polkit_check_async(m, BERTH_ACTION_CONTAINER_MANAGE_ANY,
                                                                   NULL, subscribe_all, userdata, error));
        return broker_authorize(m, NULL, subscribe_own, userdata, NULL, 0, NULL, error);
}

static int unsubscribe_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        const char *sender = sd_bus_message_get_sender(m);

        /* Only the caller's own subscription. */
        if (sender && events)
                g_hash_table_remove(events->subscribers, sender);
        return sd_bus_reply_method_return(m, "");
}

int method_unsubscribe_events(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return broker_authorize(m, NULL, unsubscribe_authorized, userdata, NULL, 0, NULL, error);
}

bool broker_events_busy(void) {
        return events && g_hash_table_size(events->subscribers) > 0;
}

int broker_events_setup(Manager *m) {
        events = calloc(1, sizeof(*events));
        if (!events)
                return log_oom();
        g_queue_init(&events->ring);
        events->subscribers = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, subscriber_free);
        return 0;
}

void broker_events_free(Manager *m) {
        if (!events)
                return;
        g_hash_table_destroy(events->subscribers);
        g_queue_clear_full(&events->ring, (GDestroyNotify) event_free);
        free(events);
        events = NULL;
}
