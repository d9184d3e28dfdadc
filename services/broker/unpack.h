/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"
#include "broker.h"

/* The unpack half of a pull: turns the layers of the platforms it is given into committed snapshots at
 * the unpacker, bottom-up, each layer as soon as its blob is committed by the fetcher AND the layer below
 * it is committed as a snapshot, so unpacking overlaps downloading (containerd's unpacker does the same
 * with its Prepare/Apply/Commit per chain id).
 *
 * pull.c feeds it: platforms whose config is known (unpack_add_platform), and layer blobs as the
 * fetcher hands them over (unpack_layer_ready, which keeps its own copy of the fd until the pull ends).
 * It calls back on_progress when a layer got committed (the pull may be complete now), on_fail with
 * a one-line message when an unpack failed, and on_layer_state when a layer's row should change
 * ("unpacking", "unpacked", "failed"). It knows nothing of transfers: the owner shows what it says. */

/* Unpack calls can take long for big layers: the unpacker has its own limits (bytes, entries per
 * layer); this timeout only guards against a lost reply. */
#define UNPACK_CALL_TIMEOUT_USEC (12ULL * 3600ULL * 1000000ULL)

typedef struct Unpack Unpack;

typedef struct UnpackCallbacks {
        void (*on_progress)(void *userdata);
        void (*on_fail)(void *userdata, const char *message);
        void (*on_layer_state)(void *userdata, const char *digest, const char *state); /* a static string */
        void *userdata;
} UnpackCallbacks;

/* Starts by asking the unpacker which snapshots are committed already. id names the work in log
 * messages ("Transfer <id>: …"). */
int unpack_new(Manager *m, uint32_t id, const UnpackCallbacks *cb, Unpack **ret);
Unpack *unpack_free(Unpack *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(Unpack *, unpack_free);

/* Unpack the layers of platform number `index` (the caller's numbering). Arrays of n entries; the
 * strings are copied. */
int unpack_add_platform(Unpack *u, size_t index, char *const *chain_ids, char *const *digests,
                        char *const *diff_ids, char *const *media_types, size_t n);
/* A layer blob is committed at the fetcher: fd is a read-only fd to it (duplicated here). */
int unpack_layer_ready(Unpack *u, const char *digest, int fd);
/* Stop: replies to calls in flight are ignored from now on (the unpacker finishes or drops its jobs
 * itself; a half-done job is never committed). */
void unpack_stop(Unpack *u);

/* Has every layer of every platform added been committed? */
bool unpack_complete(const Unpack *u);
/* Was platform `index` added and is it completely unpacked? */
bool unpack_platform_unpacked(const Unpack *u, size_t index);
/* Does this pull need (or is it making) the snapshot `chain_id`? Garbage collection keeps those. */
bool unpack_uses_chain(const Unpack *u, const char *chain_id);
