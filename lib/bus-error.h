/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

/* Bus errors in one place: which errno a handler may return to mean which org.berth.Error, which
 * errors of an internal call mean "the service went away", and how an internal call's failure reaches
 * the public caller. */

/* errno ↔ org.berth.Error.<Name>: -ENOENT NotFound, -EEXIST Exists, -EBUSY Busy, -ECANCELED Cancelled,
 * -E2BIG LimitExceeded, -EBADMSG BadContent, -EOPNOTSUPP Unsupported. A broker handler may return these
 * instead of naming the error by hand (broker_authorize() and bus_reply_errno() translate); errnos not
 * listed keep sd-bus's own names. bus_error_map_register() (done by bus_service_main()) teaches sd-bus the
 * way back, so sd_bus_error_get_errno() of a NotFound reply is ENOENT. */
extern const sd_bus_error_map berth_bus_error_map[];
int bus_error_map_register(void);

/* Sets e to the org.berth.Error r (< 0) stands for, unless e is set already or r has no name of ours
 * (then sd-bus names it when the handler returns r). Returns r. */
int bus_error_from_errno(sd_bus_error *e, int r);

/* Did the call fail because the peer is gone, never started, or never answered (NoReply,
 * ServiceUnknown, NameHasNoOwner, Disconnected, TimedOut, Spawn.*)? The one list, for the broker's
 * internal calls and for the CLI's calls to the broker. */
bool bus_error_is_gone(const sd_bus_error *e);

/* Is it one of ours (org.berth.Error.*), with a message written for the user? */
bool bus_error_is_berth(const sd_bus_error *e);

/* The error a public caller gets when an internal call (`what`: "Listing snapshots") failed with e
 * (NULL: no reply at all): ours are forwarded unchanged (name and message); anything else, a service
 * that went away included, becomes ServiceUnavailable "<what> failed: <message>". Returns -errno. */
int bus_error_set_internal(sd_bus_error *ret, const sd_bus_error *e, const char *what);

/* The same, sent as the reply to request. */
int bus_reply_internal_error(sd_bus_message *request, const sd_bus_error *e, const char *what);
