/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "broker.h"

/* The container events the supervisor records in its journal (services/supervisor/event-journal.h), taken
 * into the broker's event ring (events.h) in the journal's order, each once:
 *  - live: the supervisor's Event signal, when it is the next one after the cursor;
 *  - otherwise (the broker started, the supervisor restarted, a signal was missed): ReadEvents(ring,
 *    cursor), one call at a time, again if more was asked for meanwhile.
 * The read at start-up holds SubscribeEvents replies back, so `events --since` shows what happened while
 * the broker was not running.
 *
 * SECURITY: only the current owner of org.berth.Supervisor1 is heard (as for ContainerChanged); every
 * field is checked (a container id, an action and attribute names of the supervisor's, bounded UTF-8
 * text); the owner is the broker's own record's when it has one. */

/* Limits on one ReadEvents reply: the supervisor's ring size. */
#define CONTAINER_EVENT_FEED_MAX 1024U

int container_event_feed_setup(Manager *m);
void container_event_feed_free(Manager *m);
/* Read what the supervisor recorded past the cursor (coalesced with a read in flight). */
void container_event_feed_read(Manager *m);
