/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "broker.h"

/* Events (docs/api.md, "Events"; docs/architecture/events.md): what happened to containers and images, as
 * docker's and podman's event streams show it. The broker keeps the last EVENTS_RING_MAX in a persisted
 * ring (lib/event-ring.h, <state>/meta/events.ring, for --since, across its restarts) and delivers each one
 * as a unicast signal Manager.Event to every subscriber (Manager.SubscribeEvents) allowed to see it.
 * Container events that the supervisor sees (start, pause, unpause, oom, die, health_status) come from the
 * supervisor's own journal (container-event-feed.c), so those that happened while the broker was not
 * running are taken in when it starts, in order and once; the owner stays with each event, so the
 * replay is filtered as the live stream is:
 *
 *   SECURITY: a broadcast signal would reach every client on the system bus. Container events go only to
 *   the container's owner, root, and subscribers that asked for everyone's (flag ALL_USERS, checked against
 *   org.berth.container-manage-any at subscription); image events to every subscriber (subscribing needs
 *   org.berth.info, which is what sees images). Subscriptions are tracked with sd_bus_track: they end when
 *   the client leaves the bus (or calls UnsubscribeEvents). */

#define EVENTS_RING_MAX 1024U
#define EVENTS_SUBSCRIBERS_MAX 256U
#define EVENTS_SUBSCRIBERS_PER_UID_MAX 16U /* one user cannot take every slot */
#define EVENTS_ATTRS_MAX 8U                /* BERTH_EVENT_ATTRS_MAX */
#define EVENTS_FILE "events.ring"
/* A tag event holds two image references (REFERENCE_LENGTH_MAX each) and a digest: at most ~9 MiB on disk.
 */
#define EVENTS_SLOT_SIZE 8704U

#define EVENT_TYPE_CONTAINER "container"
#define EVENT_TYPE_IMAGE "image"

/* Flags of SubscribeEvents. */
#define SUBSCRIBE_EVENTS_FLAG_ALL_USERS (UINT64_C(1) << 0)

/* Records the event and sends it to whoever may see it. attrs: NULL or a NULL-terminated key, value, …
 * list (at most EVENTS_ATTRS_MAX pairs). owner: the container's owner (ignored for images). Never fails
 * the caller: an event that cannot be built is logged and dropped. */
void broker_event_emit(Manager *m, const char *type, const char *action, const char *id, const char *name,
                       uid_t owner, const char *const *attrs);

/* A container event from the supervisor's journal, record seq (container-event-feed.c validated it and
 * filled in the owner, name and image from the broker's record): taken when seq is past the cursor, which
 * it then moves (persisted with it), dropped otherwise. */
void broker_event_ingest(Manager *m, uint64_t seq, uint64_t time_usec, const char *action, const char *id,
                         const char *name, uid_t owner, const char *const *attrs);
/* The cursor into the supervisor's journal: its ring id ("" before the first read) and the last seq taken.
 */
const char *broker_events_feed_ring(void);
uint64_t broker_events_feed_seq(void);
/* The supervisor reports another journal (new file): the cursor starts again at its beginning. */
void broker_events_feed_restart(Manager *m, const char *ring_id);
/* Between these, SubscribeEvents calls wait (their replay must include what the read brings). */
void broker_events_catch_up_begin(void);
void broker_events_catch_up_end(Manager *m);

int broker_events_setup(Manager *m);
/* Subscribers keep the broker from exiting for idleness (live events reach them only while we run). */
bool broker_events_busy(void);
void broker_events_free(Manager *m);

int method_subscribe_events(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_unsubscribe_events(sd_bus_message *m, void *userdata, sd_bus_error *error);
