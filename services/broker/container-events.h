/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "broker.h"
#include "container-store.h"

/* The container events (events.h) that follow from the mirror of the supervisor's state: start, pause,
 * unpause, oom, die; and create, stop, destroy from the broker's own steps. */

/* "created", "running", "paused", "stopped". */
bool container_status_known(const char *status);
/* After CreateContainer succeeded. */
void container_event_created(Manager *m, ContainerRecord *c);
/* c->status changed: the event(s) the change means, compared with the status the last event told of. */
void container_event_state(Manager *m, ContainerRecord *c);
/* An event with no attributes but the image ("stop", "destroy"). */
void container_event_simple(Manager *m, ContainerRecord *c, const char *action);
/* c->health changed to a non-empty state: "health_status" (docker's name), attribute healthStatus. */
void container_event_health(Manager *m, ContainerRecord *c);
/* An exec was asked for: "exec". */
void container_event_exec(Manager *m, ContainerRecord *c);
