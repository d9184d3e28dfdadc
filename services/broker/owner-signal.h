/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

/* Signals about objects one user owns (a container, a transfer) go to that user's connections only, and
 * to root's, as unicast messages (a destination set on each copy), never broadcast: on the system bus a
 * broadcast signal reaches every connection with a matching rule, so any local user could follow
 * another's containers and pulls. dbus-daemon's system policy does not let unprivileged connections
 * eavesdrop on unicast messages to others, so a copy addressed to the owner is seen by the owner (and by
 * root's monitors) only.
 *
 * A connection is subscribed once it was authorised to read such an object (its Properties Get/GetAll or
 * a method on it; see docs/api.md, "Signals"), under the uid of the object's owner, until it disconnects
 * (sd_bus_track). Used by container objects (container-properties.c).
 *
 * The one unicast send below is also how transfers reach their watchers (transfer-access.c) and events
 * their subscribers (events.c): each keeps its own list of whom to tell. */

#define OWNER_SIGNALS_PEERS_MAX 256U /* subscribed connections per owner uid; more are not subscribed */
#define OWNER_SIGNALS_OWNERS_MAX 4096U

typedef struct OwnerSignals OwnerSignals;

int owner_signals_new(sd_bus *bus, OwnerSignals **ret);
OwnerSignals *owner_signals_free(OwnerSignals *s);

/* Subscribes the sender of m to the signals of the objects of owner (call it only once the sender may
 * read them: it is the owner, root, or was granted container-manage-any). 0, or -EUSERS past a limit. */
int owner_signals_subscribe(OwnerSignals *s, sd_bus_message *m, uid_t owner);

/* Whether any connection is subscribed (the broker then stays, so that the subscriptions hold). */
bool owner_signals_busy(OwnerSignals *s);

/* Appends a signal's arguments. */
typedef int (*owner_signal_append_t)(sd_bus_message *signal, void *userdata);

/* Sends path/interface.member, arguments by append() (may be NULL), to the connection destination only
 * (a unique bus name). 0 or -errno. */
int bus_signal_send_to(sd_bus *bus, const char *destination, const char *path, const char *interface,
                       const char *member, owner_signal_append_t append, void *userdata);

/* Sends path/interface.member, arguments by append(), as one unicast copy to each connection subscribed
 * under owner and under root. Returns the number of copies sent or -errno. */
int owner_signals_emit(OwnerSignals *s, uid_t owner, const char *path, const char *interface,
                       const char *member, owner_signal_append_t append, void *userdata);
