/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "broker.h"
#include "container-store.h"

/* The container events (events.h) of the broker's own steps: create, stop, destroy, exec (kill is
 * container-object.c's). start, pause, unpause, oom, die and health_status come from the supervisor's
 * journal (container-event-feed.h); only a container found gone ("lost") gets its die from here. */

/* "created", "running", "paused", "stopped". */
bool container_status_known(const char *status);
/* After CreateContainer succeeded. */
void container_event_created(Manager *m, ContainerRecord *c);
/* c->status changed: a die when the container was lost with the supervisor's state; nothing else. */
void container_event_state(Manager *m, ContainerRecord *c);
/* An event with no attributes but the image ("stop", "destroy"). */
void container_event_simple(Manager *m, ContainerRecord *c, const char *action);
/* c->health changed: nothing (the supervisor's journal has health_status). */
void container_event_health(Manager *m, ContainerRecord *c);
/* An exec was asked for: "exec". */
void container_event_exec(Manager *m, ContainerRecord *c);
