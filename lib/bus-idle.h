/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

/* Idle exit, as systemd's bus services (importd, hostnamed) do it: a service with nothing in flight
 * exits after a quiet period, and the next call to its name starts it again by bus activation. */

#define BUS_IDLE_EXIT_SEC_DEFAULT 30U
#define BUS_IDLE_EXIT_SEC_MAX 86400U
#define BUS_IDLE_KEY "idle-exit-sec"

/* Reads `idle-exit-sec=` from group `group` of config_dir/file (GKeyFile). A missing file or key means
 * BUS_IDLE_EXIT_SEC_DEFAULT; 0 means never exit for idleness. A malformed or out-of-range value is an
 * error (-EINVAL, with *ret_error saying where): it must not silently turn into "never" or "at once". */
int bus_idle_timeout_load(const char *config_dir, const char *file, const char *group, uint64_t *ret_usec,
                          char **ret_error);

/* Does this connection wait for replies to method calls it made (internal calls, polkit checks, name
 * requests)? sd-bus keeps every call with a timeout in its reply queue: sd_bus_get_timeout() reports the
 * earliest one, or "none" when no reply is awaited and no message is unread. */
bool bus_has_pending_calls(sd_bus *bus);

/* Runs the event loop until it is told to exit (SIGTERM) or the service stayed idle for timeout_usec
 * (0: never): idle means busy() (may be NULL) returns false, no reply is awaited, and no event was
 * dispatched for that long. Going idle, it tells systemd STOPPING=1 (so systemd queues new starts
 * rather than sending them to us), releases `name` and keeps serving until the bus says the name is
 * gone: the calls queued for us before the release are answered, the ones after it start a new
 * instance. If a queued call started work, the loop runs until that work is done as well. Returns the
 * event loop's exit code or a negative errno. */
int bus_event_loop_with_idle(sd_event *event, sd_bus *bus, const char *name, uint64_t timeout_usec,
                             bool (*busy)(void *userdata), void *userdata);
