/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdarg.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "broker.h"

/* The core every internal client (fetcher-client.c, unpacker-client.c, supervisor-client.c) is built
 * on: one way to address an internal service, build a call and send it asynchronously on the broker's
 * loop. The broker never makes a synchronous call: its loop serves every public caller.
 *
 * Sending: with ret_slot the caller owns the slot (unref it to drop the call: the callback then never
 * runs); without, the call is floating and its callback runs once, with the reply or an error
 * (NoReply on timeout, Disconnected when the bus goes). timeout_usec 0 means BUS_INTERNAL_TIMEOUT_USEC.
 * Errors of a reply are read with sd_bus_message_get_error() and passed on with
 * bus_reply_internal_error() / bus_error_set_internal() (lib/bus-error.h). */

typedef struct InternalService {
        const char *name; /* "fetcher", for messages: "Cannot reach the berth fetcher" */
        const char *bus_name;
        const char *path;
        const char *iface;
} InternalService;

extern const InternalService internal_fetcher, internal_unpacker, internal_supervisor;

int internal_new_call(Manager *m, const InternalService *s, sd_bus_message **ret, const char *member);
int internal_call_send(Manager *m, sd_bus_message *call, sd_bus_slot **ret_slot, uint64_t timeout_usec,
                       sd_bus_message_handler_t cb, void *userdata);
/* member(types: the arguments in ap; NULL or "" for none). */
int internal_callv(Manager *m, const InternalService *s, sd_bus_slot **ret_slot, uint64_t timeout_usec,
                   sd_bus_message_handler_t cb, void *userdata, const char *member, const char *types,
                   va_list ap);

/* A call could not even be sent (r < 0): ServiceUnavailable "Cannot reach the berth <name>: <errno>",
 * set in error (returns < 0, for a method handler) or sent as the reply to request. */
int internal_error_unreachable(const InternalService *s, int r, sd_bus_error *error);
int internal_reply_unreachable(sd_bus_message *request, const InternalService *s, int r);

/* The body of one client module: <svc>_call() and <svc>_new_call() for the service `desc`. */
#define DEFINE_INTERNAL_CLIENT(svc, desc)                                                                   \
        int svc##_call(Manager *m, sd_bus_slot **ret_slot, uint64_t timeout_usec,                           \
                       sd_bus_message_handler_t cb, void *userdata, const char *member, const char *types,  \
                       ...) {                                                                               \
                va_list ap;                                                                                 \
                int r;                                                                                      \
                va_start(ap, types);                                                                        \
                r = internal_callv(m, &(desc), ret_slot, timeout_usec, cb, userdata, member, types, ap);    \
                va_end(ap);                                                                                 \
                return r;                                                                                   \
        }                                                                                                   \
        int svc##_new_call(Manager *m, sd_bus_message **ret, const char *member) {                          \
                return internal_new_call(m, &(desc), ret, member);                                          \
        }
