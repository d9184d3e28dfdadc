/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker.h"

/* A transfer is long work published on the bus at /org/berth/Broker1/transfer/<n> (interface
 * org.berth.Broker1.Transfer): properties, Progress (rate-limited) and Finished signals, Cancel(). It
 * stays on the bus TRANSFER_LINGER_USEC after it finished so late subscribers can read the result. */

#define TRANSFER_LINGER_USEC (60ULL * 1000000ULL)
#define TRANSFER_PROGRESS_INTERVAL_USEC (100ULL * 1000ULL) /* ~10 Progress signals per second */

typedef enum TransferState {
        TRANSFER_RESOLVING,
        TRANSFER_DOWNLOADING,
        TRANSFER_UNPACKING, /* every blob is here; layers are still being unpacked */
        TRANSFER_DONE,
        TRANSFER_FAILED,
        TRANSFER_CANCELLED,
        _TRANSFER_STATE_MAX,
} TransferState;

const char *transfer_state_to_string(TransferState s);

typedef struct TransferBlob {
        char *digest;
        char *media_type;
        const char *state; /* static: waiting, downloading, verifying, done, exists, unpacking, unpacked,
                              failed, retrying (its fetcher or unpacker died; the broker started it again) */
        uint64_t done, total;
} TransferBlob;

/* What the owner of a transfer's work (pull.c: a pull, or the unpack of a stored image) does for it.
 * transfer.c knows its owner only through these, so the dependency runs one way: owner → transfer. */
typedef struct TransferOwnerOps {
        /* Cancel(): drop every call in flight; the transfer then finishes as cancelled. */
        void (*cancel)(void *owner);
        /* The transfer is freed: free the owner (it never outlives its transfer). */
        void (*free)(void *owner);
        /* Does the work need (or is it making) the snapshot chain_id? Garbage collection keeps those. */
        bool (*uses_chain)(void *owner, const char *chain_id);
} TransferOwnerOps;

typedef struct Transfer {
        Manager *manager;
        uint32_t id;
        char *path;
        uid_t uid;       /* who started it: only they (or root) may cancel */
        char *reference; /* normalised */
        char *platform;  /* normalised, "" = default */
        uint64_t flags;
        TransferState state;
        GPtrArray *blobs; /* TransferBlob* */
        char *image_digest;
        char *error;
        sd_bus_slot *slot;
        sd_event_source *progress_timer;
        sd_event_source *expire_timer;
        bool progress_pending;
        void *owner; /* the work, owned; see TransferOwnerOps */
        const TransferOwnerOps *owner_ops;
        /* transfer-access.c: who may see it */
        GPtrArray *participants;  /* uids (GUINT_TO_POINTER) that joined it, besides uid */
        GPtrArray *watchers;      /* unique bus names its signals are sent to (owned) */
        sd_bus_slot *access_slot; /* the object callback that guards Properties.Get/GetAll */
} Transfer;

/* The vtable of org.berth.Broker1.Transfer (Cancel, properties, Progress, Finished). */
extern const sd_bus_vtable broker_transfer_vtable[];
/* A property's value (the vtable's getter), its D-Bus signature, and the i-th property's name (NULL
 * past the end). */
int transfer_property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                          sd_bus_message *reply, void *userdata, sd_bus_error *error);
const char *transfer_property_signature(const char *property);
const char *transfer_property_name(size_t i);

/* transfer-access.c (issue 12, finding 7): only root and the uids that started or joined a transfer
 * see it. transfer_add_watcher(t, m) makes m's sender a participant and sends it the transfer's
 * signals (call it before the work starts, so that nothing it emits at once is lost). */
bool transfer_visible_to(const Transfer *t, uid_t uid);
int transfer_add_watcher(Transfer *t, sd_bus_message *m);
/* The same for a sender of uid named sender (what transfer_add_watcher() reads from m). */
int transfer_add_watcher_name(Transfer *t, uid_t uid, const char *sender);
int transfer_access_attach(Transfer *t);
void transfer_access_done(Transfer *t);
typedef int (*transfer_signal_builder_t)(Transfer *t, sd_bus_message *s, void *userdata);
/* One copy of the signal per watcher, addressed to it; build appends the arguments. */
int transfer_send_to_watchers(Transfer *t, const char *member, transfer_signal_builder_t build,
                              void *userdata);
int transfer_emit_properties_changed(Transfer *t, const char *const *props);

int transfer_new(Manager *m, uid_t uid, const char *reference, const char *platform, uint64_t flags,
                 Transfer **ret);
void transfer_free(Transfer *t);
void manager_free_transfers(Manager *m);

/* Hands the work over to t: from now on t frees it (ops->free) with itself. */
void transfer_set_owner(Transfer *t, const TransferOwnerOps *ops, void *owner);

bool transfer_is_running(const Transfer *t);
Transfer *transfer_find_running(Manager *m, const char *reference, const char *platform, uint64_t flags);
unsigned transfer_count_running(Manager *m, bool any_uid, uid_t uid);

TransferBlob *transfer_find_blob(Transfer *t, const char *digest);
int transfer_add_blob(Transfer *t, const char *digest, const char *media_type, uint64_t total,
                      TransferBlob **ret);
/* state must be one of the static blob states (validated by the caller); NULL keeps the state. */
void transfer_blob_update(Transfer *t, TransferBlob *b, const char *state, uint64_t done, uint64_t total);
/* Maps a state string from the fetcher to our static one, or NULL when unknown. */
const char *transfer_blob_state_from_string(const char *s);

void transfer_set_state(Transfer *t, TransferState s);
void transfer_set_image_digest(Transfer *t, const char *digest);
/* Ends the transfer: Result/Error set, Finished emitted, expiry armed. Idempotent. */
void transfer_finish(Transfer *t, TransferState s, const char *error);

/* Does a running transfer's work need (or make) the snapshot chain_id? */
bool manager_chain_in_running_transfer(Manager *m, const char *chain_id);
/* Is this digest part of a transfer that is still running (other than `except`)? */
bool manager_digest_in_running_transfer(Manager *m, const char *digest, const Transfer *except);
