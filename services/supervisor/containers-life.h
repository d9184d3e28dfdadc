/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "container.h"

/* containers-life-bus.c: pause/resume, statistics and log streams (docs/internal-api.md). */
int method_pause_container(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_resume_container(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_container_stats(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_open_log_streams(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* "paused" for a running container whose cgroup is frozen, else container_status_to_string(). */
const char *container_status_string(const Container *c);
/* Freezes or thaws the container's cgroup and emits the change (no-op when already so). */
int container_set_paused(Container *c, bool paused);
