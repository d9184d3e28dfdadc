/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

/* container-io-bus.c: the terminal size of a container's pty and signals to its exec'd processes. */
int method_resize_container_terminal(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_signal_exec(sd_bus_message *m, void *userdata, sd_bus_error *error);
