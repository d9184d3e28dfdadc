/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "broker.h"

/* Manager.CreateNetwork / RemoveNetwork / ListNetworks / InspectNetwork (broker-networks.c): authorised
 * here (broker-auth.c's table), done by the supervisor, its reply passed on as it is. */
int method_create_network(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_remove_network(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_list_networks(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_inspect_network(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* Container.GetNetwork's body (container-object.c authorised it): the supervisor's summary of the
 * container's attachment, {network, addresses, ports} or {}. */
int broker_container_network(Manager *m, sd_bus_message *request, const char *id);
