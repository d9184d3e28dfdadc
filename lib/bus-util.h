/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "bus-call.h"
#include "macro.h"

/* libsystemd's headers define the *_unrefp cleanup helpers (sd_bus_unrefp, sd_bus_message_unrefp, …). */

static inline void sd_bus_error_freep(sd_bus_error *e) {
        sd_bus_error_free(e);
}
#define _cleanup_bus_error_ _cleanup_(sd_bus_error_freep)

/* What a service tells bus_service_main(): its identity and how to publish its objects. */
typedef struct BusService {
        const char *program;     /* "berth-fetcher" */
        const char *bus_name;    /* "org.berth.Fetcher1" */
        const char *description; /* one line for --help */
        /* Called once the bus is connected and before the name is requested. */
        int (*setup)(sd_bus *bus, sd_event *event, void *userdata);
        /* Called after the loop exits (SIGTERM, idle exit), before the connection is closed. */
        void (*shutdown)(void *userdata);
        /* Work in flight that must not be dropped (jobs, transfers, containers to watch): while it returns
         * true the service never exits for idleness. NULL: only awaited replies keep it (bus-idle.h). */
        bool (*busy)(void *userdata);
        /* Where idle-exit-sec= is read (bus-idle.h): config_file under $BERTH_CONFIG_DIR or /etc/berth,
         * group config_group. NULL: the default idle period. */
        const char *config_file;  /* "unpacker.conf" */
        const char *config_group; /* "unpacker" */
        void *userdata;
} BusService;

/* Parses --help/--version, reads the idle period, connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS is
 * honoured, for tests on a private bus), runs setup, takes the name, notifies readiness, runs until
 * SIGTERM/SIGINT or until it was idle for the idle period (bus_event_loop_with_idle()).
 * Returns an exit status. */
int bus_service_main(const BusService *svc, int argc, char *argv[]);

/* The sender's effective uid as the bus daemon recorded it at connect time. Fails with -EPERM when
 * the uid is not known first-hand (never trust values read racily from /proc). */
int bus_message_sender_uid(sd_bus_message *m, uid_t *ret);

/* Internal services: refuse everyone but the broker's system user. Returns 0 when the sender is the
 * broker, or a negative errno with the bus error set to org.berth.Error.NotBroker. */
int bus_require_broker(sd_bus_message *m, sd_bus_error *error);

/* The uid of a named system user, or -ESRCH. */
int lookup_user_uid(const char *user, uid_t *ret);

/* Appends the standard a{sv} status every service reports (Version, State, PID, UID, MemoryRSS). */
int bus_append_service_status(sd_bus_message *reply, const char *state);

/* Reply to m with the error already set in error, else the one r stands for (lib/bus-error.h: -ENOENT is
 * NotFound, …; other errnos as sd-bus names them). */
int bus_reply_errno(sd_bus_message *m, int r, sd_bus_error *error);

/* SECURITY: methods reject flag bits they do not know (never ignore them: a newer caller would believe
 * they took effect). Returns 0 when flags has no bit outside known, else -EINVAL with the bus error
 * set to InvalidArgs "Unknown flags 0x<the unknown bits>.". */
int bus_check_flags(uint64_t flags, uint64_t known, sd_bus_error *error);

/* Method handler for the internal services' GetInfo(): broker only, returns the status a{sv}. */
int bus_method_internal_get_info(sd_bus_message *m, void *userdata, sd_bus_error *error);
