/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker.h"
#include "internal-call.h"

/* Who has which snapshot: the unpacker's snapshots, the supervisor's mounted image views, and (from the
 * broker's own records) the images and running transfers that use them. A SnapCall collects the first
 * two with a call to each service, then runs its continuation; listing, removal, usage and garbage
 * collection all decide from it. */

/* Removal deletes whole trees at the unpacker: more than a quick call. */
#define SNAPSHOT_REMOVE_TIMEOUT_USEC (BUS_INTERNAL_TIMEOUT_USEC * 4)

typedef struct Snap {
        char *chain_id, *parent, *diff_id;
        uint64_t size;
        uint32_t entries;
} Snap;

typedef struct SnapCall SnapCall;
typedef void (*SnapContinuation)(SnapCall *c);

struct SnapCall {
        Manager *manager;
        sd_bus_message *request; /* NULL for garbage collection started by PruneContent */
        GHashTable *snaps;       /* chain id → Snap* (owned) */
        GHashTable *mounted;     /* chain id → NULL */
        bool need_mounted;       /* removal: the supervisor must answer */
        SnapContinuation next;
        char **ids; /* RemoveSnapshots' arguments, SnapshotInfo's argument */
        uint64_t freed;
        unsigned removed;
        GPtrArray *doomed; /* gc: chain ids to remove, children before parents */
        guint doomed_next;
        BrokerGcDone gc_done;
        void *gc_userdata;
};

/* request: the public call that is answered at the end (NULL for gc started by PruneContent). */
SnapCall *snap_call_new(Manager *m, sd_bus_message *request);
/* The same with c->ids = { id } (none for NULL): the one snapshot or image the call is about. */
SnapCall *snap_call_new_one(Manager *m, sd_bus_message *request, const char *id);
void snap_call_free(SnapCall *c);
/* Ends a call with an error: to the D-Bus caller, or to the garbage collector's continuation; frees c. */
void snap_call_fail(SnapCall *c, const char *name, const char *format, ...) _printf_(3, 4);
/* The same for a failed internal call (bus_error_set_internal()), or one that could not be sent. */
void snap_call_fail_bus(SnapCall *c, const sd_bus_error *e, const char *what);
void snap_call_fail_unreachable(SnapCall *c, const InternalService *s, int r);

/* Starts collecting; next runs once both services answered (a failed ListMountedSnapshots is an error
 * only with need_mounted). On failure to send, c is freed and error set. Returns 1 (the reply comes
 * later) or < 0. */
int snap_collect(SnapCall *c, SnapContinuation next, sd_bus_error *error);

bool image_uses_chain(const Image *i, const char *chain_id);
/* Names of the images whose chains contain chain_id (borrowed strings, sorted by image name). */
GPtrArray *snap_images_using(Manager *m, const char *chain_id);
/* Everything that must stay: chains of images, of mounted views and of running transfers, with their
 * ancestors. Keys are borrowed; valid within this turn of the event loop. */
GHashTable *snap_compute_keep(SnapCall *c);
/* How many ancestors s has. */
unsigned snap_depth(SnapCall *c, const Snap *s);
/* The collected snapshots sorted by chain id (borrowed; free the array only). */
Snap **snap_sorted(SnapCall *c, size_t *ret_n);
