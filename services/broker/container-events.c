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

        /* Unknown before (a broker that started with the container existing): nothing happened that we saw.
         */
        if (!was) {
                remember(c);
                return;
        }
        if (streq(was, c->status))
                return;
        if (streq(c->status, "running"))
                container_event_simple(m, c, streq(was, "paused") ? "unpause" : "start");
        else if (streq(c->status, "paused"))
                container_event_simple(m, c, "pause");
        else if (streq(c->status, "stopped")) {
                char code[16];

                snprintf(code, sizeof(code), "%d", c->exit_code);
                if (streq_ptr(c->reason, "oom"))
                        container_event_simple(m, c, "oom");
                broker_event_emit(m, EVENT_TYPE_CONTAINER, "die", c->id, c->name, c->owner,
                                  (const char *const[]){ "image", c->image, "exitCode", code, "reason",
                                                         c->reason ?: "", NULL });
        }
        remember(c);
}

void container_event_health(Manager *m, ContainerRecord *c) {
        if (isempty(c->health))
                return;
        broker_event_emit(m, EVENT_TYPE_CONTAINER, "health_status", c->id, c->name, c->owner,
                          (const char *const[]){ "image", c->image, "healthStatus", c->health, NULL });
}

void container_event_exec(Manager *m, ContainerRecord *c) {
        /* As docker's exec_create: told when the exec is asked of the supervisor (its outcome reaches the
         * caller through the status fd, not the broker). */
        broker_event_emit(m, EVENT_TYPE_CONTAINER, "exec", c->id, c->name, c->owner,
                          (const char *const[]){ "image", c->image, NULL });
}
