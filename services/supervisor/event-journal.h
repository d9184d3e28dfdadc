/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "container.h"

/* The supervisor's event journal (docs/architecture/events.md): what happened to its containers (start,
 * pause, unpause, oom, die, health_status) in a persisted, bounded ring (lib/event-ring.h) under
 * <state>/containers/events.ring, so that a broker that was not running when it happened (idle exit,
 * crash, restart) still learns it, exactly once and in order.
 *
 * Each record goes out at once as Event, unicast to the broker (never started by it), before the
 * ContainerChanged that tells the same change; the broker reads what it missed with ReadEvents(ring,
 * after, flags), which answers only the broker. The owner is the container's own (from its state
 * record), so the broker can show each user only their own containers' events. */

#define EVENT_JOURNAL_SLOTS 1024U
/* Container ids, names (CONTAINER_NAME_MAX at the broker), short attributes: the file is at most 1 MiB. */
#define EVENT_JOURNAL_SLOT_SIZE 1024U
#define EVENT_JOURNAL_FILE "events.ring"
/* In each container's state directory: the status and health the journal last told of, so that a
 * supervisor that restarts records an exit it missed once, and no change twice. */
#define EVENT_JOURNAL_STATE_FILE "event-state"

int event_journal_open(Manager *m);
void event_journal_close(void);

/* c's status or health may have changed: records the events the change means (none for a container not
 * seen before: its creation is the broker's event). Called by container_emit_changed() and when a
 * container is re-adopted. */
void event_journal_note(Container *c);

int method_read_events(sd_bus_message *msg, void *userdata, sd_bus_error *error);
