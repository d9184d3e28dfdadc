/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

/* container-life.c: Manager.ContainerStats; the bodies of Container.Pause / Unpause / OpenLogStreams
 * are in broker-containers.h. */

/* Flags of Container.OpenLogStreams. */
#define OPEN_LOG_STREAMS_FLAG_FOLLOW (UINT64_C(1) << 0)

int method_container_stats(sd_bus_message *m, void *userdata, sd_bus_error *error);
