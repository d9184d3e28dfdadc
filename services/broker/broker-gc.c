/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <inttypes.h>
#include <stdio.h>

#include "berth-flags.h"
#include "berth-limits.h"
#include "broker.h"
#include "bus-error.h"
#include "bus-names.h"
#include "bus-util.h"
#include "digest.h"
#include "fetcher-client.h"
#include "image-store.h"
#include "log.h"
#include "snapshot-census.h"
#include "transfer.h"
#include "unpacker-client.h"

/* Garbage collection, all of it: PruneContent removes the blobs no image and no running transfer
 * references (the fetcher's store), then the partial downloads, then the snapshots no image, mounted view
 * or running transfer needs (the unpacker's store), then the unpacker's leftovers. Each removal is
 * decided and sent within one turn of the loop, so no transfer can start in between. */

#define INGEST_MIN_AGE_USEC (3600ULL * 1000000ULL)
/* Listing, removing and cleaning walk the whole store: more than a quick call. */
#define CONTENT_CALL_TIMEOUT_USEC (BUS_INTERNAL_TIMEOUT_USEC * 4)

/* ---- snapshots -------------------------------------------------------------- */

static void gc_next_batch(SnapCall *c);

static int on_clean_work(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SnapCall *c = userdata;
        uint64_t freed = 0;

        if (sd_bus_message_is_method_error(m, NULL))
                log_warning("CleanWork failed: %s", strna(sd_bus_message_get_error(m)->message));
        else if (sd_bus_message_read(m, "t", &freed) >= 0)
                c->freed += freed;
        log_info("Snapshot gc: %u snapshot(s) removed, %" PRIu64 " bytes freed.", c->removed, c->freed);
        c->gc_done(c->gc_userdata, 0, c->freed, c->removed, NULL);
        snap_call_free(c);
        return 0;
}

static int on_gc_remove(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        SnapCall *c = userdata;
        uint64_t freed = 0;

        if (sd_bus_message_is_method_error(m, NULL)) {
                snap_call_fail_bus(c, sd_bus_message_get_error(m), "Removing snapshots");
                return 0;
        }
        if (sd_bus_message_read(m, "t", &freed) >= 0)
                c->freed += freed;
        gc_next_batch(c);
        return 0;
}

static void gc_next_batch(SnapCall *c) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        g_autoptr(GHashTable) keep = NULL;
        unsigned in_batch = 0;
        int r;

        if (c->doomed_next >= c->doomed->len) {
                r = unpacker_call(c->manager, NULL, 0, on_clean_work, c, "CleanWork", NULL);
                if (r < 0)
                        snap_call_fail_unreachable(c, &internal_unpacker, r);
                return;
        }
        /* Decided again for every batch, within this turn of the loop: a pull that started since needs
         * its chains (its ListSnapshots reaches the unpacker after this RemoveSnapshots, so it sees the
         * removal and unpacks again what it needs). */
        keep = snap_compute_keep(c);
        r = unpacker_new_call(c->manager, &call, "RemoveSnapshots");
        if (r >= 0)
                r = sd_bus_message_open_container(call, 'a', "s");
        while (r >= 0 && c->doomed_next < c->doomed->len && in_batch < BUS_ARRAY_MAX) {
                const char *id = c->doomed->pdata[c->doomed_next++];

                if (g_hash_table_contains(keep, id))
                        continue;
                r = sd_bus_message_append(call, "s", id);
                in_batch++;
        }
        if (r >= 0)
                r = sd_bus_message_close_container(call);
        if (r >= 0 && in_batch == 0) {
                gc_next_batch(c);
                return;
        }
        if (r >= 0)
                r = internal_call_send(c->manager, call, NULL, SNAPSHOT_REMOVE_TIMEOUT_USEC, on_gc_remove,
                                       c);
        if (r < 0) {
                snap_call_fail_unreachable(c, &internal_unpacker, r);
                return;
        }
        c->removed += in_batch;
}

static int compare_depth_desc(gconstpointer a, gconstpointer b, gpointer userdata) {
        SnapCall *c = userdata;
        const Snap *x = g_hash_table_lookup(c->snaps, *(const char *const *) a);
        const Snap *y = g_hash_table_lookup(c->snaps, *(const char *const *) b);
        unsigned dx = snap_depth(c, x), dy = snap_depth(c, y);

        return dx > dy ? -1 : dx < dy;
}

static void gc_decide(SnapCall *c) {
        g_autoptr(GHashTable) keep = snap_compute_keep(c);
        GHashTableIter iter;
        gpointer key;

        c->doomed = g_ptr_array_new();
        g_hash_table_iter_init(&iter, c->snaps);
        while (g_hash_table_iter_next(&iter, &key, NULL))
                if (!g_hash_table_contains(keep, key))
                        g_ptr_array_add(c->doomed, key);
        /* Children before parents, so that every batch the unpacker sees leaves no orphan behind. */
        g_ptr_array_sort_with_data(c->doomed, compare_depth_desc, c);
        gc_next_batch(c);
}

int broker_snapshot_gc(Manager *m, BrokerGcDone done, void *userdata) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        SnapCall *c = snap_call_new(m, NULL);
        int r;

        if (!c)
                return -ENOMEM;
        c->need_mounted = true;
        c->gc_done = done;
        c->gc_userdata = userdata;
        r = snap_collect(c, gc_decide, &error);
        return r < 0 ? r : 0;
}

typedef struct PruneCall {
        Manager *manager;
        sd_bus_message *request;
        uint64_t flags;
        uint64_t freed;
        uint32_t removed;
        unsigned pending;
        bool failed;
} PruneCall;

static PruneCall *prune_call_new(Manager *manager, sd_bus_message *request) {
        PruneCall *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->manager = manager;
        c->request = sd_bus_message_ref(request);
        return c;
}

static void prune_call_free(PruneCall *c) {
        if (!c)
                return;
        sd_bus_message_unref(c->request);
        free(c);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(PruneCall *, prune_call_free);

/* For a method handler: starts the call, or frees c and fails the method with ServiceUnavailable. */
static int call_fetcher_or_fail(PruneCall *c, sd_bus_error *error, sd_bus_message_handler_t callback,
                                const char *member, const char *types, ...) {
        va_list ap;
        int r;

        va_start(ap, types);
        r = internal_callv(c->manager, &internal_fetcher, NULL, CONTENT_CALL_TIMEOUT_USEC, callback, c,
                           member, types, ap);
        va_end(ap);
        if (r < 0) {
                prune_call_free(c);
                return internal_error_unreachable(&internal_fetcher, r, error);
        }
        return 0;
}

/* ---- PruneContent ---------------------------------------------------------------------------------- */

static void on_snapshot_gc_done(void *userdata, int r, uint64_t freed, unsigned removed, const char *error) {
        PruneCall *c = userdata;

        if (r < 0)
                (void) sd_bus_reply_method_errorf(c->request, BERTH_ERROR_IO,
                                                  "Removing unused snapshots: %s", strna(error));
        else {
                c->freed += freed;
                (void) sd_bus_reply_method_return(c->request, "tu", c->freed, c->removed);
        }
        prune_call_free(c);
}

static int on_clean_ingests(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        PruneCall *c = userdata;
        uint64_t freed = 0;
        int r;

        if (sd_bus_message_is_method_error(m, NULL))
                (void) bus_reply_internal_error(c->request, sd_bus_message_get_error(m),
                                                "Cleaning partial downloads");
        else if (sd_bus_message_read(m, "t", &freed) < 0)
                (void) sd_bus_reply_method_errorf(c->request, BERTH_ERROR_SERVICE_UNAVAILABLE,
                                                  "Malformed reply from the fetcher.");
        else {
                c->freed += freed;
                log_info("Pruned %" PRIu32 " blob(s), %" PRIu64 " bytes freed.", c->removed, c->freed);
                /* Then the snapshots no image, view or pull needs (broker-snapshots.c); it replies. */
                r = broker_snapshot_gc(c->manager, on_snapshot_gc_done, c);
                if (r >= 0)
                        return 0;
                (void) internal_reply_unreachable(c->request, &internal_unpacker, r);
        }
        prune_call_free(c);
        return 0;
}

static void prune_next(PruneCall *c) {
        int r;

        r = fetcher_call(c->manager, NULL, CONTENT_CALL_TIMEOUT_USEC, on_clean_ingests, c, "CleanIngests",
                         "t", (c->flags & PRUNE_FLAG_ALL_INGESTS) ? UINT64_C(0) : INGEST_MIN_AGE_USEC);
        if (r < 0) {
                (void) internal_reply_unreachable(c->request, &internal_fetcher, r);
                prune_call_free(c);
        }
}

/* One RemoveBlobs call (or the sending loop's own hold) is over: the last one goes on, or ends. */
static void prune_release(PruneCall *c) {
        if (--c->pending > 0)
                return;
        if (c->failed)
                prune_call_free(c);
        else
                prune_next(c);
}

static int on_remove_blobs(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        PruneCall *c = userdata;
        uint64_t freed = 0;

        if (sd_bus_message_is_method_error(m, NULL)) {
                if (!c->failed)
                        (void) bus_reply_internal_error(c->request, sd_bus_message_get_error(m),
                                                        "Removing blobs");
                c->failed = true;
        } else if (sd_bus_message_read(m, "t", &freed) >= 0)
                c->freed += freed;

        prune_release(c);
        return 0;
}

static int on_list_blobs_for_prune(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        PruneCall *c = userdata;
        g_autoptr(GArray) blobs = g_array_new(false, false, sizeof(FetcherBlob));
        g_autoptr(GPtrArray) doomed = g_ptr_array_new();
        _cleanup_free_ Image **images = NULL;
        size_t n_images = 0;
        int r;

        if (sd_bus_message_is_method_error(m, NULL)) {
                (void) bus_reply_internal_error(c->request, sd_bus_message_get_error(m),
                                                "Listing the content store");
                prune_call_free(c);
                return 0;
        }
        r = fetcher_read_blob_list(m, blobs);
        if (r >= 0)
                r = image_store_list(c->manager->images, &images, &n_images);
        if (r < 0) {
                (void) sd_bus_reply_method_errorf(c->request, BERTH_ERROR_IO, "Failed to list content: %s",
                                                  strerror(-r));
                prune_call_free(c);
                return 0;
        }

        /* Decided and sent within this one turn of the loop, so no pull can start in between; a pull
         * starting later reaches the fetcher after our RemoveBlobs and fetches again. */
        for (guint i = 0; i < blobs->len; i++) {
                FetcherBlob *b = &g_array_index(blobs, FetcherBlob, i);
                bool used = false;

                for (size_t k = 0; !used && k < n_images; k++)
                        used = image_references_blob(images[k], b->digest);
                /* SECURITY/consistency: never a blob of an image being pulled right now. */
                if (used || manager_digest_in_running_transfer(c->manager, b->digest, NULL))
                        continue;
                g_ptr_array_add(doomed, (gpointer) b->digest);
        }
        c->removed = doomed->len;

        c->pending = 1; /* held while sending */
        for (guint off = 0; off < doomed->len; off += BUS_ARRAY_MAX) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;

                r = fetcher_new_call(c->manager, &call, "RemoveBlobs");
                if (r >= 0)
                        r = sd_bus_message_open_container(call, 'a', "s");
                for (guint i = off; r >= 0 && i < doomed->len && i < off + BUS_ARRAY_MAX; i++)
                        r = sd_bus_message_append(call, "s", (const char *) doomed->pdata[i]);
                if (r >= 0)
                        r = sd_bus_message_close_container(call);
                if (r >= 0)
                        r = internal_call_send(c->manager, call, NULL, CONTENT_CALL_TIMEOUT_USEC,
                                               on_remove_blobs, c);
                if (r < 0) {
                        log_error_errno(r, "Failed to ask the fetcher to remove blobs: %m");
                        if (!c->failed)
                                (void) internal_reply_unreachable(c->request, &internal_fetcher, r);
                        c->failed = true;
                        break;
                }
                c->pending++;
        }
        prune_release(c);
        return 0;
}

typedef struct PruneContentArgs {
        uint64_t flags;
} PruneContentArgs;

static int prune_content_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        PruneContentArgs *a = args;
        PruneCall *c;
        int r;

        r = bus_check_flags(a->flags, PRUNE_FLAGS_ALL, error);
        if (r < 0)
                return r;
        c = prune_call_new(manager, m);
        if (!c)
                return -ENOMEM;
        c->flags = a->flags;
        r = call_fetcher_or_fail(c, error, on_list_blobs_for_prune, "ListBlobs", NULL);
        if (r < 0)
                return r;
        return 1;
}

int method_prune_content(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        PruneContentArgs a = {};
        int r;

        r = sd_bus_message_read(m, "t", &a.flags);
        if (r < 0)
                return r;
        return broker_authorize(m, NULL, prune_content_authorized, userdata, &a, sizeof(a), NULL, error);
}
