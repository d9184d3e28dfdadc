/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The event ring and its subscribers (events.h). */
#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bus-error.h"
#include "bus-names.h"
#include "bus-polkit.h"
#include "bus-util.h"
#include "event-record.h"
#include "event-ring.h"
#include "events.h"
#include "log.h"
#include "owner-signal.h"

/* What the ring holds, decoded (lib/event-record.h). */
typedef BerthEvent Event;

/* A SubscribeEvents that waits for the first read of the supervisor's journal (events.h). */
typedef struct PendingSubscribe {
        sd_bus_message *message;
        bool all_users;
} PendingSubscribe;

typedef struct Subscriber {
        Manager *manager;
        char *name; /* unique bus name */
        uid_t uid;
        bool all_users;
        sd_bus_track *track;
} Subscriber;

typedef struct Events {
        GQueue ring;             /* Event*, oldest first: what the file holds */
        GHashTable *subscribers; /* unique name → Subscriber* */
        EventRing *file;         /* <state>/meta/events.ring; NULL: memory only (logged) */
        /* How far the supervisor's journal was read: its ring id and the last seq taken. */
        char feed_ring[EVENT_RING_ID_STRING_LEN + 1];
        uint64_t feed_seq;
        unsigned catching_up; /* reads of the journal that subscribers wait for */
        GPtrArray *pending;   /* PendingSubscribe*, answered once catching_up is 0 */
} Events;

/* The Manager struct is shared by every broker file: the events hang off it through one static pointer
 * per broker (there is one Manager per process). */
static Events *events;

static void event_free(Event *e) {
        berth_event_free(e);
}

static void pending_free(void *p) {
        PendingSubscribe *ps = p;

        if (!ps)
                return;
        sd_bus_message_unref(ps->message);
        free(ps);
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

        r = sd_bus_message_append(m, "tssssu", e->time_usec, e->type, e->action, e->id, e->name, e->owner);
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

/* The aux number of a record taken from the supervisor's journal: its seq, and 16 bits of that journal's id
 * (so that a record of an older journal is not mistaken for one of this). 0 for the broker's own. */
#define FEED_SEQ_BITS 48
#define FEED_SEQ_MAX ((UINT64_C(1) << FEED_SEQ_BITS) - 1)

static uint64_t feed_tag(const char *ring_id) {
        uint64_t tag = 0;

        for (size_t i = 0; i < 4 && ring_id && ring_id[i]; i++)
                tag = tag << 4 | (uint64_t) g_ascii_xdigit_value(ring_id[i]);
        return tag;
}

static void events_add(Manager *m, Event *e, uint64_t aux) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;
        int r;

        deliver(m, e);
        if (events->file) {
                buf = malloc(event_ring_payload_max(events->file));
                r = buf ? berth_event_encode(e, buf, event_ring_payload_max(events->file), &len) : -ENOMEM;
                if (r >= 0)
                        r = event_ring_append(events->file, e->time_usec, aux, buf, len, NULL);
                if (r < 0)
                        log_warning_errno(r, "Cannot save the %s event of '%s': %m", e->action, e->name);
        }
        g_queue_push_tail(&events->ring, e);
        while (events->ring.length > EVENTS_RING_MAX)
                event_free(g_queue_pop_head(&events->ring));
}

void broker_event_emit(Manager *m, const char *type, const char *action, const char *id, const char *name,
                       uid_t owner, const char *const *attrs) {
        Event *e = NULL;
        int r;

        if (!events || !type || !action)
                return;
        r = berth_event_new(now_usec(), type, action, id, name, (uint32_t) owner, attrs, &e);
        if (r < 0) {
                log_oom();
                return;
        }
        events_add(m, e, 0);
}

const char *broker_events_feed_ring(void) {
        return events ? events->feed_ring : "";
}

uint64_t broker_events_feed_seq(void) {
        return events ? events->feed_seq : 0;
}

void broker_events_feed_restart(Manager *m, const char *ring_id) {
        int r;

        if (!events || !event_ring_id_valid(ring_id) || streq(events->feed_ring, ring_id))
                return;
        log_info("The supervisor's event journal is %s (was %s): reading all of it.", ring_id,
                 isempty(events->feed_ring) ? "none" : events->feed_ring);
        snprintf(events->feed_ring, sizeof(events->feed_ring), "%s", ring_id);
        events->feed_seq = 0;
        if (events->file) {
                r = event_ring_set_mark(events->file, events->feed_ring, 0);
                if (r < 0)
                        log_warning_errno(r, "Cannot save the event journal cursor: %m");
        }
}

void broker_event_ingest(Manager *m, uint64_t seq, uint64_t time_usec, const char *action, const char *id,
                         const char *name, uid_t owner, const char *const *attrs) {
        Event *e = NULL;
        int r;

        if (!events || isempty(events->feed_ring) || seq <= events->feed_seq || seq > FEED_SEQ_MAX)
                return;
        r = berth_event_new(time_usec, EVENT_TYPE_CONTAINER, action, id, name, (uint32_t) owner, attrs, &e);
        if (r < 0) {
                log_oom();
                return;
        }
        events->feed_seq = seq;
        events_add(m, e, feed_tag(events->feed_ring) << FEED_SEQ_BITS | seq);
        /* After the record: a crash between the two is mended from the record's aux (events_load()). */
        if (events->file) {
                r = event_ring_set_mark(events->file, events->feed_ring, seq);
                if (r < 0)
                        log_warning_errno(r, "Cannot save the event journal cursor: %m");
        }
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

/* While the broker reads what the supervisor recorded in its absence, a replay would miss it: the
 * subscription waits (the reply is its first word, so nothing is delivered meanwhile). */
static int subscribe_or_wait(sd_bus_message *m, Manager *manager, bool all_users, sd_bus_error *error) {
        PendingSubscribe *ps;

        if (events->catching_up == 0)
                return subscribe_authorized(m, manager, all_users, error);
        if (events->pending->len >= EVENTS_SUBSCRIBERS_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "Too many event subscribers.");
        ps = calloc(1, sizeof(*ps));
        if (!ps)
                return -ENOMEM;
        ps->message = sd_bus_message_ref(m);
        ps->all_users = all_users;
        g_ptr_array_add(events->pending, ps);
        return 1;
}

static int subscribe_own(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        return subscribe_or_wait(m, manager, false, error);
}

static int subscribe_all(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return subscribe_or_wait(m, userdata, true, error);
}

void broker_events_catch_up_begin(void) {
        if (events)
                events->catching_up++;
}

void broker_events_catch_up_end(Manager *m) {
        g_autoptr(GPtrArray) pending = NULL;

        if (!events || events->catching_up == 0 || --events->catching_up > 0)
                return;
        pending = TAKE_PTR(events->pending);
        events->pending = g_ptr_array_new_with_free_func(pending_free);
        for (guint i = 0; i < pending->len; i++) {
                PendingSubscribe *ps = pending->pdata[i];
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                int r;

                r = subscribe_authorized(ps->message, m, ps->all_users, &error);
                if (r < 0)
                        (void) sd_bus_reply_method_errno(ps->message, r, &error);
        }
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
        return events && (g_hash_table_size(events->subscribers) > 0 || events->pending->len > 0);
}

/* SECURITY: the file is ours (meta/ is 0700 berth-broker), still read as lib/event-ring.h and
 * lib/event-record.h say: fixed-size reads, every record checked, a bad one dropped. */
static void events_load(Manager *m) {
        g_autofree char *dir = g_strdup_printf("%s/meta", m->state_dir);
        _cleanup_close_ int dir_fd = -EBADF;
        uint64_t tag;
        int r;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                log_warning_errno(errno, "Cannot create '%s': events are kept in memory only: %m", dir);
                return;
        }
        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        r = dir_fd < 0
                    ? -errno
                    : event_ring_open(dir_fd, EVENTS_FILE, EVENTS_RING_MAX, EVENTS_SLOT_SIZE, &events->file);
        if (r < 0) {
                log_warning_errno(r, "Cannot open '%s/%s': events are kept in memory only: %m", dir,
                                  EVENTS_FILE);
                return;
        }
        for (uint64_t seq = event_ring_first_seq(events->file);
             seq != 0 && seq <= event_ring_last_seq(events->file); seq++) {
                const EventRingRecord *rec = event_ring_get(events->file, seq);
                Event *e = NULL;

                if (!rec || berth_event_decode(rec->payload, rec->len, &e) < 0)
                        continue;
                e->time_usec = rec->time_usec;
                g_queue_push_tail(&events->ring, e);
        }
        snprintf(events->feed_ring, sizeof(events->feed_ring), "%s", event_ring_mark_id(events->file));
        events->feed_seq = event_ring_mark_value(events->file);
        /* The newest record taken from this journal may be newer than the mark (written after it). */
        tag = feed_tag(events->feed_ring);
        for (uint64_t seq = event_ring_last_seq(events->file);
             !isempty(events->feed_ring) && seq != 0 && seq >= event_ring_first_seq(events->file); seq--) {
                const EventRingRecord *rec = event_ring_get(events->file, seq);

                if (!rec || rec->aux == 0 || rec->aux >> FEED_SEQ_BITS != tag)
                        continue;
                if ((rec->aux & FEED_SEQ_MAX) > events->feed_seq)
                        events->feed_seq = rec->aux & FEED_SEQ_MAX;
                break;
        }
        log_debug("Loaded %u events; the supervisor's journal %s was read up to %" PRIu64 ".",
                  events->ring.length, events->feed_ring[0] ? events->feed_ring : "none", events->feed_seq);
}

int broker_events_setup(Manager *m) {
        events = calloc(1, sizeof(*events));
        if (!events)
                return log_oom();
        g_queue_init(&events->ring);
        events->subscribers = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, subscriber_free);
        events->pending = g_ptr_array_new_with_free_func(pending_free);
        events_load(m);
        return 0;
}

void broker_events_free(Manager *m) {
        if (!events)
                return;
        g_hash_table_destroy(events->subscribers);
        g_queue_clear_full(&events->ring, (GDestroyNotify) event_free);
        g_ptr_array_unref(events->pending);
        events->file = event_ring_free(events->file);
        free(events);
        events = NULL;
}
