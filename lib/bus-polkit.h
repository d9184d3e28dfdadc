/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

/* Runs once the caller is authorised; replies to m itself (like a method handler). A negative return
 * makes the helper reply with the error set in `error`, or with the errno. */
typedef int (*polkit_continuation_t)(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* Authorises the sender of m for `action` and then runs `cont`.
 *
 * SECURITY: the polkit subject is the caller's unique bus name ("system-bus-name"), never a PID, so
 * polkit asks the bus daemon who is behind it and there is no PID-reuse race (CVE-2013-4288). Root
 * callers are allowed without asking, as systemd's services do. Any failure to get an answer from
 * polkit means "denied".
 *
 * `details` is a NULL-terminated key, value, key, value… list shown by polkit agents and given to
 * rules; put every security-relevant argument in it.
 *
 * Returns 1 when the reply will be sent later (the handler returns 1), or whatever `cont` returned
 * when it ran at once. `userdata` must outlive the call (the service's manager object). */
int bus_polkit_check_async(sd_bus_message *m, const char *action, const char *const *details,
                           polkit_continuation_t cont, void *userdata, sd_bus_error *error);

/* The same, for a userdata that lives only as long as the check: from the call on the check owns it, and
 * destroy(userdata) runs exactly once, after cont ran or when the check ended without running it
 * (denied, polkit failed, the bus went away, or an error right away). */
int bus_polkit_check_async_full(sd_bus_message *m, const char *action, const char *const *details,
                                polkit_continuation_t cont, void *userdata, void (*destroy)(void *userdata),
                                sd_bus_error *error);

/* The same check for a subject other than the sender: a service that acts for a caller another service
 * forwarded (the supervisor, for the broker's caller). subject must be a unique bus name (":1.42");
 * polkit asks the bus daemon who owns it, so a name that is gone is simply denied. A denial is
 * org.berth.Error.NotAllowed naming the action. */
int bus_polkit_check_subject_async(sd_bus_message *m, const char *subject, const char *action,
                                   const char *const *details, polkit_continuation_t cont, void *userdata,
                                   sd_bus_error *error);

bool bus_unique_name_is_valid(const char *s);
