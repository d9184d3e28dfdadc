/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>
#include <systemd/sd-bus.h>

/* cmd-network.c: Container.GetNetwork as JSON ({network, addresses, ports}, {} or null). */
JsonNode *container_network_json(sd_bus *bus, const char *path);
