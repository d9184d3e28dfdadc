/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

/* berthctl's own polkit text agent (pkttyagent), so that an administrator on a terminal is asked for a
 * password instead of being refused. Started lazily: a call goes out without interactive
 * authorization; only when the broker answers InteractiveAuthorizationRequired (polkit wants to ask) is
 * the agent started, for this process only, and the call repeated with interactive authorization
 * allowed. A member doing what the policy grants never pays the agent's start-up.
 *
 * libc and libsystemd only (no GLib): linked into every berthctl binary. */

/* Called for each new connection: remembers whether the user may be asked (not --no-ask-password,
 * stdin a terminal), and allows interactive authorization on the bus if the agent already runs. */
int polkit_agent_setup_bus(sd_bus *bus, bool ask_password);

/* sd_bus_call(), but a call the broker refuses with InteractiveAuthorizationRequired is repeated once,
 * with interactive authorization allowed, after starting the agent (when the user may be asked). A
 * missing or broken agent only means the repeated call is answered without it (refused, as before). */
int polkit_agent_call(sd_bus *bus, sd_bus_message *m, uint64_t usec, sd_bus_error *ret_error,
                      sd_bus_message **ret_reply);

/* sd_bus_call_method() through polkit_agent_call(), with arguments types/...; sd-bus's default timeout,
 * ten minutes when the user may be asked (as broker_default_timeout()). */
int polkit_agent_call_method(sd_bus *bus, const char *destination, const char *path, const char *interface,
                             const char *member, sd_bus_error *ret_error, sd_bus_message **ret_reply,
                             const char *types, ...);

/* Starts pkttyagent for this process unless euid is 0, stdin is no terminal or pkttyagent is not
 * installed; returns once it is registered. 1 when it runs, 0 when skipped, < 0 when it could not be
 * started (nothing is left running). At most one attempt per process. */
int polkit_agent_open(void);

/* Stops the agent and reaps it (also run at exit). A no-op when none runs. */
void polkit_agent_close(void);
