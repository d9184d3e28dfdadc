/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "broker.h"

/* Events (docs/api.md, "Events"): what happened to containers and images, as docker's and podman's event
 * streams show it. The broker keeps the last EVENTS_RING_MAX in memory (for --since) and delivers each one
 * as a unicast signal Manager.Event to every subscriber (Manager.SubscribeEvents) allowed to see it:
 *
 *   SECURITY: a broadcast signal would reach every client on the system bus. Container events go only to
 *   the container's owner, root, and subscribers that asked for everyone's (flag ALL_USERS, checked against
 *   org.berth.container-manage-any at subscription); image events to every subscriber (subscribing needs
 *   org.berth.info, which is what sees images). Subscriptions are tracked with sd_bus_track: they end when
 *   the client leaves the bus (or calls UnsubscribeEvents). */

#define EVENTS_RING_MAX 1024U
#define EVENTS_SUBSCRIBERS_MAX 256U
#define EVENTS_SUBSCRIBERS_PER_UID_MAX 16U /* one user cannot take every slot */
#define EVENTS_ATTRS_MAX 8U

#define EVENT_TYPE_CONTAINER "container"
#define EVENT_TYPE_IMAGE "image"

/* Flags of SubscribeEvents. */
#define SUBSCRIBE_EVENTS_FLAG_ALL_USERS (UINT64_C(1) << 0)

/* Records the event and sends it to whoever may see it. attrs: NULL or a NULL-terminated key, value, …
 * list (at most EVENTS_ATTRS_MAX pairs). owner: the container's owner (ignored for images). Never fails
 * the caller: an event that cannot be built is logged and dropped. */
void broker_event_emit(Manager *m, const char *type, const char *action, const char *id, const char *name,
                       uid_t owner, const char *const *attrs);

int broker_events_setup(Manager *m);
/* Subscribers keep the broker from exiting for idleness (the ring is in memory only). */
bool broker_events_busy(void);
void broker_events_free(Manager *m);

int method_subscribe_events(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_unsubscribe_events(sd_bus_message *m, void *userdata, sd_bus_error *error);
