/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

/* org.berth.Supervisor1's network methods (networks-bus.c); userdata is the Manager. */
int method_create_network(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_remove_network(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_list_networks(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_inspect_network(sd_bus_message *m, void *userdata, sd_bus_error *error);
/* The container's attachment {network, addresses, ports} as JSON ("{}" without one). */
int method_get_container_network(sd_bus_message *m, void *userdata, sd_bus_error *error);
