/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

/* container-life.c: Container.Pause / Unpause / OpenLogStreams and Manager.ContainerStats. */

/* Flags of Container.OpenLogStreams. */
#define OPEN_LOG_STREAMS_FLAG_FOLLOW (UINT64_C(1) << 0)

/* Pause and Unpause (by member name). */
int method_container_pause(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_container_open_log_streams(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_container_stats(sd_bus_message *m, void *userdata, sd_bus_error *error);
