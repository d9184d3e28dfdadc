/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "container.h"

/* Health checks through the exec path (exec.h), on the supervisor's event loop: a timer per running
 * container with a check (<state dir>/health, health-config.h). Its state (status, failures in a row)
 * is kept in <state dir>/health-state, so a restarted supervisor goes on where it was. */

/* The container's status changed (created, running, stopped, adopted): start or stop checking. */
void health_update(Container *c);

/* The container is gone (container_free()). */
void health_forget(Container *c);

/* "" (no check), "starting", "healthy" or "unhealthy"; for a stopped container the status its run ended
 * with (until the supervisor restarts). */
const char *health_status(Container *c);
