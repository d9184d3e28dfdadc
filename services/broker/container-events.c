/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "container-events.h"
#include "events.h"

bool container_status_known(const char *status) {
        return status && (streq(status, "created") || streq(status, "running") || streq(status, "paused") ||
                          streq(status, "stopped"));
}

void container_event_simple(Manager *m, ContainerRecord *c, const char *action) {
        broker_event_emit(m, EVENT_TYPE_CONTAINER, action, c->id, c->name, c->owner,
                          (const char *const[]){ "image", c->image, NULL });
}

static void remember(ContainerRecord *c) {
        char *s = strdup(c->status);

        if (s) {
                free(c->event_status);
                c->event_status = s;
        }
}

void container_event_created(Manager *m, ContainerRecord *c) {
        container_event_simple(m, c, "create");
        remember(c);
}

void container_event_state(Manager *m, ContainerRecord *c) {
        const char *was = c->event_status;

        /* start, pause, unpause, oom and die are the supervisor's to tell (its journal, read by
         * container-event-feed.c: in order and once, also when they happened while we were not running).
         * Only a container gone with the supervisor's state (a reboot emptied /run/berth) has no one else
         * to tell of its end. */
        if (was && !streq(was, c->status) && streq(c->status, "stopped") && streq_ptr(c->reason, "lost")) {
                char code[16];

                snprintf(code, sizeof(code), "%d", c->exit_code);
                broker_event_emit(m, EVENT_TYPE_CONTAINER, "die", c->id, c->name, c->owner,
                                  (const char *const[]){ "image", c->image, "exitCode", code, "reason",
                                                         "lost", NULL });
        }
        remember(c);
}

void container_event_health(Manager *m, ContainerRecord *c) {
        /* health_status: the supervisor's journal (container-event-feed.c). */
}

void container_event_exec(Manager *m, ContainerRecord *c) {
        /* As docker's exec_create: told when the exec is asked of the supervisor (its outcome reaches the
         * caller through the status fd, not the broker). */
        broker_event_emit(m, EVENT_TYPE_CONTAINER, "exec", c->id, c->name, c->owner,
                          (const char *const[]){ "image", c->image, NULL });
}
