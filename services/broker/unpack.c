/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

#include "berth-limits.h"
#include "bus-names.h"
#include "bus-error.h"
#include "bus-util.h"
#include "digest.h"
#include "unpacker-client.h"
#include "log.h"
#include "unpack.h"

typedef enum LayerState {
        LAYER_PENDING,   /* waiting for its blob or for the layer below */
        LAYER_UNPACKING, /* Unpack call in flight */
        LAYER_UNPACKED,  /* snapshot committed */
} LayerState;

typedef struct UnpackLayer {
        char *chain_id;
        char *digest;
        char *diff_id;
        char *media_type;
        LayerState state;
} UnpackLayer;

typedef struct Unpack Unpack;

typedef struct UnpackPlatform {
        Unpack *unpack;
        size_t index;
        UnpackLayer *layers;
        size_t n_layers;
        size_t next;       /* lowest layer not yet unpacked */
        sd_bus_slot *slot; /* the Unpack call in flight, at most one per platform: bottom-up */
} UnpackPlatform;

struct Unpack {
        Manager *manager;
        uint32_t id;
        UnpackCallbacks cb;
        sd_bus_slot *list_slot;  /* ListSnapshots at the start */
        sd_event_source *notify; /* deferred on_progress: never called back from inside the caller's call */
        bool listed;             /* ListSnapshots answered (or failed: then Unpack tells us) */
        bool stopped;
        GHashTable *committed; /* chain id → NULL: known committed at the unpacker */
        GHashTable *ready;     /* layer digest → fd (GINT_TO_POINTER(fd + 1)), owned */
        UnpackPlatform *platforms;
        size_t n_platforms;
};

static void unpack_platform_done(UnpackPlatform *p) {
        sd_bus_slot_unref(p->slot);
        for (size_t l = 0; l < p->n_layers; l++) {
                free(p->layers[l].chain_id);
                free(p->layers[l].digest);
                free(p->layers[l].diff_id);
                free(p->layers[l].media_type);
        }
        free(p->layers);
        *p = (UnpackPlatform){};
}

static void close_ready_fd(gpointer p) {
        safe_close(GPOINTER_TO_INT(p) - 1);
}

Unpack *unpack_free(Unpack *u) {
        if (!u)
                return NULL;
        sd_bus_slot_unref(u->list_slot);
        sd_event_source_disable_unref(u->notify);
        for (size_t i = 0; i < u->n_platforms; i++)
                unpack_platform_done(&u->platforms[i]);
        free(u->platforms);
        if (u->committed)
                g_hash_table_destroy(u->committed);
        if (u->ready)
                g_hash_table_destroy(u->ready);
        return mfree(u);
}

void unpack_stop(Unpack *u) {
        if (!u)
                return;
        u->stopped = true;
        u->list_slot = sd_bus_slot_unref(u->list_slot);
        u->notify = sd_event_source_disable_unref(u->notify);
        for (size_t i = 0; i < u->n_platforms; i++)
                u->platforms[i].slot = sd_bus_slot_unref(u->platforms[i].slot);
        /* The blobs are not needed any more: the unpacker holds its own copies for jobs it runs. */
        g_hash_table_remove_all(u->ready);
}

bool unpack_complete(const Unpack *u) {
        if (!u)
                return true;
        for (size_t i = 0; i < u->n_platforms; i++)
                if (u->platforms[i].next < u->platforms[i].n_layers)
                        return false;
        return true;
}

bool unpack_platform_unpacked(const Unpack *u, size_t index) {
        if (!u)
                return false;
        for (size_t i = 0; i < u->n_platforms; i++)
                if (u->platforms[i].index == index)
                        return u->platforms[i].next >= u->platforms[i].n_layers;
        return false;
}

bool unpack_uses_chain(const Unpack *u, const char *chain_id) {
        if (!u || u->stopped)
                return false;
        for (size_t i = 0; i < u->n_platforms; i++)
                for (size_t l = 0; l < u->platforms[i].n_layers; l++)
                        if (streq(u->platforms[i].layers[l].chain_id, chain_id))
                                return true;
        return false;
}

/* ---- rows: what the owner shows for each layer ------------------------------------------------------ */

static void set_blob_state(Unpack *u, const char *digest, const char *state) {
        u->cb.on_layer_state(u->cb.userdata, digest, state);
}

/* ---- driving ---------------------------------------------------------------------------------------- */

static void unpack_kick(Unpack *u);

static int on_notify(sd_event_source *s, void *userdata) {
        Unpack *u = userdata;

        u->notify = sd_event_source_disable_unref(u->notify);
        if (!u->stopped)
                u->cb.on_progress(u->cb.userdata);
        return 0;
}

static void schedule_notify(Unpack *u) {
        int r;

        if (u->notify || u->stopped)
                return;
        r = sd_event_add_defer(u->manager->event, &u->notify, on_notify, u);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule the unpack notification: %m");
        else
                (void) sd_event_source_set_enabled(u->notify, SD_EVENT_ONESHOT);
}

static void unpack_fail(Unpack *u, const char *format, ...) _printf_(2, 3);
static void unpack_fail(Unpack *u, const char *format, ...) {
        _cleanup_free_ char *msg = format_varargs(format);
        unpack_stop(u);
        u->cb.on_fail(u->cb.userdata, msg ?: "Unpack failed");
}

static int on_unpack_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        UnpackPlatform *p = userdata;
        Unpack *u = p->unpack;
        UnpackLayer *l = &p->layers[p->next];
        uint64_t size;
        uint32_t entries;
        int r;

        p->slot = sd_bus_slot_unref(p->slot);
        if (u->stopped)
                return 0;

        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);

                l->state = LAYER_PENDING;
                set_blob_state(u, l->digest, "failed");
                if (bus_error_is_gone(e))
                        unpack_fail(u,
                                    "The berth unpacker stopped while unpacking layer '%s' (%s); nothing of "
                                    "it was "
                                    "committed, pull again to complete the image",
                                    l->digest, e->message ?: e->name);
                else
                        unpack_fail(u, "Failed to unpack layer '%s': %s", l->digest,
                                    e ? (e->message ?: e->name) : "unknown error");
                return 0;
        }
        r = sd_bus_message_read(m, "tu", &size, &entries);
        if (r < 0) {
                unpack_fail(u, "Malformed Unpack reply from the unpacker for layer '%s'", l->digest);
                return 0;
        }
        log_debug("Transfer %" PRIu32 ": layer '%s' committed as %s (%" PRIu64 " bytes, %" PRIu32
                  " entries).",
                  u->id, l->digest, l->chain_id, size, entries);
        l->state = LAYER_UNPACKED;
        (void) g_hash_table_add(u->committed, strdup(l->chain_id));
        set_blob_state(u, l->digest, "unpacked");
        p->next++;
        unpack_kick(u);
        schedule_notify(u);
        return 0;
}

static int start_unpack(Unpack *u, UnpackPlatform *p, int fd) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        UnpackLayer *l = &p->layers[p->next];
        const char *parent = p->next > 0 ? p->layers[p->next - 1].chain_id : "";
        int r;

        r = unpacker_new_call(u->manager, &call, "Unpack");
        if (r < 0)
                return r;
        /* The fd the fetcher gave us goes on as is: the unpacker re-hashes the bytes (compressed against
         * the layer digest, uncompressed against the diff_id) and re-derives the chain id itself. */
        r = sd_bus_message_append(call, "sssssht", l->chain_id, parent, l->digest, l->diff_id, l->media_type,
                                  fd, UINT64_C(0));
        if (r < 0)
                return r;
        r = internal_call_send(u->manager, call, &p->slot, UNPACK_CALL_TIMEOUT_USEC, on_unpack_reply, p);
        if (r < 0)
                return r;
        l->state = LAYER_UNPACKING;
        set_blob_state(u, l->digest, "unpacking");
        return 0;
}

static void unpack_kick(Unpack *u) {
        int r;

        if (u->stopped || !u->listed)
                return;
        for (size_t i = 0; i < u->n_platforms; i++) {
                UnpackPlatform *p = &u->platforms[i];

                while (!p->slot && p->next < p->n_layers) {
                        UnpackLayer *l = &p->layers[p->next];
                        gpointer v;

                        /* Only once the blob is here: its row then moves on from done/exists. */
                        if (!g_hash_table_lookup_extended(u->ready, l->digest, NULL, &v))
                                break;
                        if (g_hash_table_contains(u->committed, l->chain_id)) {
                                l->state = LAYER_UNPACKED;
                                set_blob_state(u, l->digest, "unpacked");
                                p->next++;
                                continue;
                        }
                        r = start_unpack(u, p, GPOINTER_TO_INT(v) - 1);
                        if (r < 0) {
                                log_error_errno(r, "Failed to call Unpack for '%s': %m", l->digest);
                                unpack_fail(u, "Cannot reach the berth unpacker: %s", strerror(-r));
                                return;
                        }
                }
        }
        /* Everything may have been committed before: tell the pull it may be complete. */
        if (unpack_complete(u))
                schedule_notify(u);
}

static int on_list_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        g_autoptr(GArray) snaps = g_array_new(false, false, sizeof(UnpackerSnapshot));
        Unpack *u = userdata;
        int r;

        u->list_slot = sd_bus_slot_unref(u->list_slot);
        u->listed = true;
        if (sd_bus_message_is_method_error(m, NULL)) {
                /* Not fatal: every Unpack call finds out for itself (committed → instant reply). */
                log_debug("ListSnapshots failed: %s", strna(sd_bus_message_get_error(m)->message));
                unpack_kick(u);
                return 0;
        }
        r = unpacker_read_snapshot_list(m, snaps);
        if (r < 0)
                /* Not fatal either: only a shortcut is lost. */
                log_debug_errno(r, "Malformed ListSnapshots reply, ignoring: %m");
        else
                for (guint i = 0; i < snaps->len; i++)
                        (void) g_hash_table_add(u->committed,
                                                strdup(g_array_index(snaps, UnpackerSnapshot, i).chain_id));
        unpack_kick(u);
        return 0;
}

int unpack_new(Manager *m, uint32_t id, const UnpackCallbacks *cb, Unpack **ret) {
        _cleanup_(unpack_freep) Unpack *u = NULL;
        int r;

        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        u->manager = m;
        u->id = id;
        u->cb = *cb;
        u->committed = g_hash_table_new_full(g_str_hash, g_str_equal, free, NULL);
        u->ready = g_hash_table_new_full(g_str_hash, g_str_equal, free, close_ready_fd);
        /* One slot per index-listed platform at most; allocated once so pointers to entries stay put. */
        u->platforms = calloc(INDEX_MANIFESTS_MAX, sizeof(UnpackPlatform));
        if (!u->platforms)
                return -ENOMEM;

        r = unpacker_call(m, &u->list_slot, 0, on_list_reply, u, "ListSnapshots", NULL);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(u);
        return 0;
}

int unpack_add_platform(Unpack *u, size_t index, char *const *chain_ids, char *const *digests,
                        char *const *diff_ids, char *const *media_types, size_t n) {
        UnpackPlatform *p;

        if (u->stopped)
                return 0;
        if (u->n_platforms >= INDEX_MANIFESTS_MAX || n > LAYERS_MAX)
                return -E2BIG;
        for (size_t i = 0; i < u->n_platforms; i++)
                if (u->platforms[i].index == index)
                        return 0;

        p = &u->platforms[u->n_platforms];
        *p = (UnpackPlatform){ .unpack = u, .index = index };
        p->layers = calloc(n ?: 1, sizeof(UnpackLayer));
        if (!p->layers)
                return -ENOMEM;
        for (size_t l = 0; l < n; l++) {
                p->layers[l] = (UnpackLayer){
                        .chain_id = strdup(chain_ids[l]),
                        .digest = strdup(digests[l]),
                        .diff_id = strdup(diff_ids[l]),
                        .media_type = strdup(media_types[l]),
                };
                p->n_layers++;
                if (!p->layers[l].chain_id || !p->layers[l].digest || !p->layers[l].diff_id ||
                    !p->layers[l].media_type) {
                        unpack_platform_done(p);
                        return -ENOMEM;
                }
        }
        u->n_platforms++;
        unpack_kick(u);
        return 0;
}

int unpack_layer_ready(Unpack *u, const char *digest, int fd) {
        char *key;
        int copy;

        if (u->stopped || g_hash_table_contains(u->ready, digest))
                return 0;
        /* Our own copy: the message that carried fd is freed when its callback returns. */
        copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
                return -errno;
        key = strdup(digest);
        if (!key) {
                safe_close(copy);
                return -ENOMEM;
        }
        g_hash_table_insert(u->ready, key, GINT_TO_POINTER(copy + 1));
        unpack_kick(u);
        return 0;
}
