/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "internal-call.h"

/* Calls to the berth supervisor (org.berth.Supervisor1), asynchronous on the broker's loop;
 * internal-call.h says how slots, timeouts and errors work. For calls with arrays or fds: build with
 * supervisor_new_call() and sd_bus_message_append*(), send with internal_call_send(). */
int supervisor_call(Manager *m, sd_bus_slot **ret_slot, uint64_t timeout_usec, sd_bus_message_handler_t cb,
                    void *userdata, const char *member, const char *types, ...);
int supervisor_new_call(Manager *m, sd_bus_message **ret, const char *member);
