/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>

#include "berth-limits.h"
#include "bus-names.h"
#include "bus-util.h"
#include "log.h"
#include "transfer.h"

static const char *const transfer_state_table[_TRANSFER_STATE_MAX] = {
        [TRANSFER_RESOLVING] = "resolving", [TRANSFER_DOWNLOADING] = "downloading",
        [TRANSFER_UNPACKING] = "unpacking", [TRANSFER_DONE] = "done",
        [TRANSFER_FAILED] = "failed",       [TRANSFER_CANCELLED] = "cancelled",
};

const char *transfer_state_to_string(TransferState s) {
        return s < _TRANSFER_STATE_MAX ? transfer_state_table[s] : "unknown";
}

static const char *const blob_states[] = { "waiting", "downloading", "verifying", "done",    "exists",
                                           "failed",  "unpacking",   "unpacked",  "retrying" };

const char *transfer_blob_state_from_string(const char *s) {
        if (!s)
                return NULL;
        /* The fetcher's "resolving" (finding the endpoint, authenticating) is still waiting to us. */
        if (streq(s, "resolving"))
                return blob_states[0];
        /* The unpack states and "retrying" (a service died and the broker restarts the work: pull.c,
         * unpack.c) are ours alone, never the fetcher's to claim. */
        if (streq(s, "unpacking") || streq(s, "unpacked") || streq(s, "retrying"))
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(blob_states); i++)
                if (streq(s, blob_states[i]))
                        return blob_states[i];
        return NULL;
}

bool transfer_is_running(const Transfer *t) {
        return t->state == TRANSFER_RESOLVING || t->state == TRANSFER_DOWNLOADING ||
               t->state == TRANSFER_UNPACKING;
}

static void transfer_blob_free(gpointer p) {
        TransferBlob *b = p;

        free(b->digest);
        free(b->media_type);
        free(b);
}

/* ---- properties ------------------------------------------------------------------------------------ */

static void totals(Transfer *t, uint64_t *done, uint64_t *total) {
        *done = *total = 0;
        for (guint i = 0; i < t->blobs->len; i++) {
                TransferBlob *b = t->blobs->pdata[i];

                *done += b->done;
                *total += b->total;
        }
}

static int append_layers(sd_bus_message *reply, Transfer *t) {
        int r;

        r = sd_bus_message_open_container(reply, 'a', "(ssstt)");
        if (r < 0)
                return r;
        for (guint i = 0; i < t->blobs->len; i++) {
                TransferBlob *b = t->blobs->pdata[i];

                r = sd_bus_message_append(reply, "(ssstt)", b->digest, b->media_type, b->state, b->done,
                                          b->total);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

int transfer_property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                          sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Transfer *t = userdata;
        uint64_t done, total;

        totals(t, &done, &total);
        if (streq(property, "Id"))
                return sd_bus_message_append(reply, "u", t->id);
        if (streq(property, "Reference"))
                return sd_bus_message_append(reply, "s", t->reference);
        if (streq(property, "Platform"))
                return sd_bus_message_append(reply, "s", t->platform);
        if (streq(property, "State"))
                return sd_bus_message_append(reply, "s", transfer_state_to_string(t->state));
        if (streq(property, "BytesDone"))
                return sd_bus_message_append(reply, "t", done);
        if (streq(property, "BytesTotal"))
                return sd_bus_message_append(reply, "t", total);
        if (streq(property, "Layers"))
                return append_layers(reply, t);
        if (streq(property, "ImageDigest"))
                return sd_bus_message_append(reply, "s", t->image_digest ?: "");
        if (streq(property, "Result"))
                return sd_bus_message_append(
                        reply, "s", transfer_is_running(t) ? "" : transfer_state_to_string(t->state));
        if (streq(property, "Error"))
                return sd_bus_message_append(reply, "s", t->error ?: "");
        return -ENOENT;
}

/* ---- signals --------------------------------------------------------------------------------------- */

static int build_progress(Transfer *t, sd_bus_message *s, void *userdata) {
        uint64_t done, total;
        int r;

        totals(t, &done, &total);
        r = sd_bus_message_append(s, "tt", done, total);
        if (r < 0)
                return r;
        return append_layers(s, t);
}

/* SECURITY: transfer signals go to the transfer's watchers only (transfer-access.c), never broadcast. */
static void emit_progress_now(Transfer *t) {
        static const char *const props[] = { "BytesDone", "BytesTotal", "Layers", NULL };
        int r;

        t->progress_pending = false;
        r = transfer_send_to_watchers(t, "Progress", build_progress, NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to emit Progress on %s: %m", t->path);
        r = transfer_emit_properties_changed(t, props);
        if (r < 0)
                log_debug_errno(r, "Failed to emit PropertiesChanged on %s: %m", t->path);
}

static int on_progress_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Transfer *t = userdata;

        t->progress_timer = sd_event_source_unref(t->progress_timer);
        if (t->progress_pending)
                emit_progress_now(t);
        return 0;
}

static void schedule_progress(Transfer *t) {
        int r;

        t->progress_pending = true;
        if (t->progress_timer)
                return;
        r = sd_event_add_time_relative(t->manager->event, &t->progress_timer, CLOCK_MONOTONIC,
                                       TRANSFER_PROGRESS_INTERVAL_USEC, 0, on_progress_timer, t);
        if (r < 0) {
                /* No timer, no rate limit: send at once rather than never. */
                log_debug_errno(r, "Failed to arm the progress timer: %m");
                emit_progress_now(t);
        }
}

/* ---- Cancel ---------------------------------------------------------------------------------------- */

static int cancel_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        const char *path = sd_bus_message_get_path(m);
        Transfer *t = NULL;
        unsigned long id;
        uid_t uid;
        char *end;
        int r;

        /* Looked up again: the transfer may have expired while polkit was thinking. */
        if (path && g_str_has_prefix(path, BERTH_BROKER_TRANSFER_PREFIX "/")) {
                errno = 0;
                id = strtoul(path + strlen(BERTH_BROKER_TRANSFER_PREFIX "/"), &end, 10);
                if (errno == 0 && *end == 0 && id <= UINT32_MAX)
                        t = g_hash_table_lookup(manager->transfers, GUINT_TO_POINTER((guint) id));
        }
        if (!t)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No such transfer.");

        /* SECURITY: polkit said the caller may pull; only the user who started this transfer (or root)
         * may stop it, so one member of group berth cannot cancel another's pull. */
        r = bus_message_sender_uid(m, &uid);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Cannot establish the caller's identity.");
        if (uid != 0 && uid != t->uid)
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Transfer %" PRIu32 " belongs to another user.", t->id);
        if (!transfer_is_running(t))
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND,
                                         "Transfer %" PRIu32 " already finished (%s).", t->id,
                                         transfer_state_to_string(t->state));

        log_info("Transfer %" PRIu32 " ('%s') cancelled by uid %u.", t->id, t->reference, (unsigned) uid);
        if (t->owner)
                t->owner_ops->cancel(t->owner);
        transfer_finish(t, TRANSFER_CANCELLED, "Pull cancelled");
        return sd_bus_reply_method_return(m, "");
}

static int method_cancel(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Transfer *t = userdata;

        return broker_authorize(m, NULL, cancel_authorized, t->manager, NULL, 0, NULL, error);
}

/* The properties are answered by transfer-access.c's object callback (owner and polkit checked) before
 * sd-bus would answer them from this table; the table still describes them for introspection. */
const sd_bus_vtable broker_transfer_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "u", transfer_property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Reference", "s", transfer_property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Platform", "s", transfer_property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", transfer_property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BytesDone", "t", transfer_property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BytesTotal", "t", transfer_property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Layers", "a(ssstt)", transfer_property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ImageDigest", "s", transfer_property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Result", "s", transfer_property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Error", "s", transfer_property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_NAMES("Cancel", "", SD_BUS_PARAM(), "", SD_BUS_PARAM(), method_cancel,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_NAMES("Progress", "tta(ssstt)",
                                 SD_BUS_PARAM(done) SD_BUS_PARAM(total) SD_BUS_PARAM(layers), 0),
        SD_BUS_SIGNAL_WITH_NAMES("Finished", "ss", SD_BUS_PARAM(result) SD_BUS_PARAM(error), 0),
        SD_BUS_VTABLE_END
};

const char *transfer_property_name(size_t i) {
        for (const sd_bus_vtable *e = broker_transfer_vtable; e->type != _SD_BUS_VTABLE_END; e++)
                if (e->type == _SD_BUS_VTABLE_PROPERTY && i-- == 0)
                        return e->x.property.member;
        return NULL;
}

const char *transfer_property_signature(const char *property) {
        for (const sd_bus_vtable *e = broker_transfer_vtable; e->type != _SD_BUS_VTABLE_END; e++)
                if (e->type == _SD_BUS_VTABLE_PROPERTY && streq(e->x.property.member, property))
                        return e->x.property.signature;
        return NULL;
}

/* ---- life cycle ------------------------------------------------------------------------------------ */

int transfer_new(Manager *m, uid_t uid, const char *reference, const char *platform, uint64_t flags,
                 Transfer **ret) {
        Transfer *t;
        uint32_t id;
        int r;

        /* Ids are never reused while the broker runs (until 2^32 transfers): a stale path a client
         * holds cannot suddenly name somebody else's transfer. */
        do
                id = ++m->next_transfer_id;
        while (id == 0 || g_hash_table_contains(m->transfers, GUINT_TO_POINTER(id)));

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->manager = m;
        t->id = id;
        t->uid = uid;
        t->flags = flags;
        t->state = TRANSFER_RESOLVING;
        t->blobs = g_ptr_array_new_with_free_func(transfer_blob_free);
        t->reference = strdup(reference);
        t->platform = strdup(platform ?: "");
        if (asprintf_safe(&t->path, BERTH_BROKER_TRANSFER_PREFIX "/%" PRIu32, id) < 0)
                t->path = NULL;
        if (!t->reference || !t->platform || !t->path) {
                transfer_free(t);
                return -ENOMEM;
        }
        r = sd_bus_add_object_vtable(m->bus, &t->slot, t->path, BERTH_BROKER_TRANSFER_IFACE,
                                     broker_transfer_vtable, t);
        if (r >= 0)
                r = transfer_access_attach(t);
        if (r < 0) {
                transfer_free(t);
                return r;
        }
        g_hash_table_insert(m->transfers, GUINT_TO_POINTER(id), t);
        *ret = t;
        return 0;
}

void transfer_set_owner(Transfer *t, const TransferOwnerOps *ops, void *owner) {
        assert(t && !t->owner && ops && owner);
        t->owner_ops = ops;
        t->owner = owner;
}

static void transfer_destroy(Transfer *t) {
        if (t->owner)
                t->owner_ops->free(t->owner);
        sd_event_source_disable_unref(t->progress_timer);
        sd_event_source_disable_unref(t->expire_timer);
        sd_bus_slot_unref(t->slot);
        transfer_access_done(t);
        g_ptr_array_unref(t->blobs);
        free(t->reference);
        free(t->platform);
        free(t->path);
        free(t->image_digest);
        free(t->error);
        free(t);
}

void transfer_free(Transfer *t) {
        if (!t)
                return;
        if (g_hash_table_lookup(t->manager->transfers, GUINT_TO_POINTER(t->id)) == t)
                g_hash_table_steal(t->manager->transfers, GUINT_TO_POINTER(t->id));
        transfer_destroy(t);
}

void manager_free_transfers(Manager *m) {
        GHashTableIter iter;
        gpointer value;

        if (!m->transfers)
                return;
        g_hash_table_iter_init(&iter, m->transfers);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                g_hash_table_iter_steal(&iter);
                transfer_destroy(value);
        }
        g_hash_table_destroy(m->transfers);
        m->transfers = NULL;
}

Transfer *transfer_find_running(Manager *m, const char *reference, const char *platform, uint64_t flags) {
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, m->transfers);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                Transfer *t = value;

                if (transfer_is_running(t) && t->flags == flags && streq(t->reference, reference) &&
                    streq(t->platform, platform))
                        return t;
        }
        return NULL;
}

unsigned transfer_count_running(Manager *m, bool any_uid, uid_t uid) {
        GHashTableIter iter;
        gpointer value;
        unsigned n = 0;

        g_hash_table_iter_init(&iter, m->transfers);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                Transfer *t = value;

                if (transfer_is_running(t) && (any_uid || t->uid == uid))
                        n++;
        }
        return n;
}

bool manager_digest_in_running_transfer(Manager *m, const char *digest, const Transfer *except) {
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, m->transfers);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                Transfer *t = value;

                if (t == except || !transfer_is_running(t))
                        continue;
                if (streq_ptr(t->image_digest, digest) || transfer_find_blob(t, digest))
                        return true;
        }
        return false;
}

bool manager_chain_in_running_transfer(Manager *m, const char *chain_id) {
        GHashTableIter iter;
        gpointer value;

        g_hash_table_iter_init(&iter, m->transfers);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                Transfer *t = value;

                if (transfer_is_running(t) && t->owner && t->owner_ops->uses_chain(t->owner, chain_id))
                        return true;
        }
        return false;
}

TransferBlob *transfer_find_blob(Transfer *t, const char *digest) {
        for (guint i = 0; i < t->blobs->len; i++) {
                TransferBlob *b = t->blobs->pdata[i];

                if (streq(b->digest, digest))
                        return b;
        }
        return NULL;
}

int transfer_add_blob(Transfer *t, const char *digest, const char *media_type, uint64_t total,
                      TransferBlob **ret) {
        TransferBlob *b;

        b = transfer_find_blob(t, digest);
        if (b) {
                if (ret)
                        *ret = b;
                return 0;
        }
        if (t->blobs->len >= LAYERS_MAX * 2 + INDEX_MANIFESTS_MAX)
                return -E2BIG;
        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->digest = strdup(digest);
        b->media_type = strdup(media_type ?: "");
        b->state = blob_states[0];
        b->total = total;
        if (!b->digest || !b->media_type) {
                transfer_blob_free(b);
                return -ENOMEM;
        }
        g_ptr_array_add(t->blobs, b);
        schedule_progress(t);
        if (ret)
                *ret = b;
        return 1;
}

void transfer_blob_update(Transfer *t, TransferBlob *b, const char *state, uint64_t done, uint64_t total) {
        /* Totals come from descriptors we verified, never from the fetcher: it only moves "done". */
        if (total != b->total)
                total = b->total;
        if (done > total)
                done = total;
        if (state)
                b->state = state;
        b->done = done;
        /* A restart is news no client may miss: "retrying" goes out at once, not folded into the next
         * rate-limited Progress (by then the row may be "unpacking" again). */
        if (state && streq(state, "retrying"))
                emit_progress_now(t);
        else
                schedule_progress(t);
}

void transfer_set_state(Transfer *t, TransferState s) {
        if (t->state == s)
                return;
        t->state = s;
        (void) transfer_emit_properties_changed(t, (const char *const[]){ "State", NULL });
}

void transfer_set_image_digest(Transfer *t, const char *digest) {
        char *d = strdup(digest);

        if (!d)
                return;
        free(t->image_digest);
        t->image_digest = d;
        (void) transfer_emit_properties_changed(t, (const char *const[]){ "ImageDigest", NULL });
}

static int on_expire(sd_event_source *s, uint64_t usec, void *userdata) {
        Transfer *t = userdata;

        log_debug("Transfer %" PRIu32 " expired.", t->id);
        transfer_free(t);
        return 0;
}

static int build_finished(Transfer *t, sd_bus_message *s, void *userdata) {
        return sd_bus_message_append(s, "ss", transfer_state_to_string(t->state), t->error ?: "");
}

void transfer_finish(Transfer *t, TransferState s, const char *error) {
        int r;

        if (!transfer_is_running(t))
                return;
        free(t->error);
        t->error = strdup(error ?: "");
        t->state = s;
        if (s == TRANSFER_FAILED || s == TRANSFER_CANCELLED)
                for (guint i = 0; i < t->blobs->len; i++) {
                        TransferBlob *b = t->blobs->pdata[i];

                        if (!streq(b->state, "done") && !streq(b->state, "exists") &&
                            !streq(b->state, "unpacked"))
                                b->state = s == TRANSFER_FAILED ? "failed" : "waiting";
                }
        /* The last Progress goes out before Finished, so a client ends with the right numbers. */
        t->progress_timer = sd_event_source_disable_unref(t->progress_timer);
        emit_progress_now(t);
        (void) transfer_emit_properties_changed(t,
                                                (const char *const[]){ "State", "Result", "Error", NULL });
        r = transfer_send_to_watchers(t, "Finished", build_finished, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to emit Finished on %s: %m", t->path);

        r = sd_event_add_time_relative(t->manager->event, &t->expire_timer, CLOCK_MONOTONIC,
                                       TRANSFER_LINGER_USEC, 0, on_expire, t);
        if (r < 0)
                log_warning_errno(r, "Failed to arm expiry of transfer %" PRIu32 ", it stays: %m", t->id);
}
