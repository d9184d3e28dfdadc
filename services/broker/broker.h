/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

typedef struct Manager {
        sd_bus *bus;
        sd_event *event;
} Manager;

/* broker-auth.c: the one table that says which polkit action each public method needs. */
const char *broker_action_for_method(const char *member);
int broker_authorize(sd_bus_message *m, const char *const *details,
                     int (*cont)(sd_bus_message *m, void *userdata, sd_bus_error *error), void *userdata,
                     sd_bus_error *error);

/* broker-info.c */
int method_get_info(sd_bus_message *m, void *userdata, sd_bus_error *error);
