/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

#include "berth-limits.h"
#include "broker.h"
#include "bus-error.h"
#include "bus-names.h"
#include "bus-util.h"
#include "digest.h"
#include "fetcher-client.h"
#include "image-record.h"
#include "image-store.h"
#include "log.h"
#include "pull.h"
#include "transfer.h"
#include "unpack.h"

/* The work of an UnpackImage transfer (a Transfer's owner, TransferOwnerOps): the unpack half of a pull
 * for an image whose blobs are already in the content store. The fetcher opens each layer blob
 * (OpenBlob, FETCH_PARALLEL_DEFAULT at a time; a missing one fails the transfer), unpack.c turns them
 * into committed snapshots bottom-up, and at the end the record's platform is marked unpacked. */

typedef struct ImageUnpack ImageUnpack;

typedef struct UnpackBlob {
        ImageUnpack *owner;
        char *digest;
        uint64_t size;
        sd_bus_slot *slot; /* OpenBlob while in flight */
} UnpackBlob;

struct ImageUnpack {
        Manager *manager;
        Transfer *transfer;
        char *target_digest;
        char *platform; /* the record's platform string */
        char **chain_ids;
        UnpackBlob *blobs; /* one per distinct layer digest */
        size_t n_blobs;
        size_t next; /* blobs[next] is the next to open */
        unsigned running;
        Unpack *unpack;
};

static void image_unpack_free(ImageUnpack *u) {
        if (!u)
                return;
        for (size_t i = 0; i < u->n_blobs; i++) {
                sd_bus_slot_unref(u->blobs[i].slot);
                free(u->blobs[i].digest);
        }
        free(u->blobs);
        unpack_free(u->unpack);
        free(u->target_digest);
        free(u->platform);
        strv_free(u->chain_ids);
        free(u);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(ImageUnpack *, image_unpack_free);

/* Drops every call in flight; their replies are ignored. Nothing to cancel at the fetcher: OpenBlob
 * downloads nothing. */
static void image_unpack_stop(ImageUnpack *u) {
        for (size_t i = 0; i < u->n_blobs; i++)
                u->blobs[i].slot = sd_bus_slot_unref(u->blobs[i].slot);
        u->next = u->n_blobs;
        u->running = 0;
        unpack_stop(u->unpack);
}

static void image_unpack_fail(ImageUnpack *u, const char *format, ...) _printf_(2, 3);
static void image_unpack_fail(ImageUnpack *u, const char *format, ...) {
        _cleanup_free_ char *msg = format_varargs(format);

        log_error("Unpack of '%s' (transfer %" PRIu32 ") failed: %s", u->transfer->reference,
                  u->transfer->id, strna(msg));
        image_unpack_stop(u);
        transfer_finish(u->transfer, TRANSFER_FAILED, msg ?: "Unpack failed");
}

static void image_unpack_complete(ImageUnpack *u) {
        int r;

        r = image_record_mark_unpacked(u->manager->images, u->transfer->reference, u->target_digest,
                                       u->platform, u->chain_ids);
        if (r < 0) {
                log_error_errno(r, "Failed to update the image record of '%s': %m", u->transfer->reference);
                image_unpack_fail(u, "Failed to save the image record: %s", strerror(-r));
                return;
        }
        log_info("Unpacked '%s' (%s), transfer %" PRIu32 ".", u->transfer->reference, u->platform,
                 u->transfer->id);
        transfer_finish(u->transfer, TRANSFER_DONE, "");
}

static int on_open_blob(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

/* Opens the next blobs, or, once all are open and every layer is committed, completes. */
static void image_unpack_dispatch(ImageUnpack *u) {
        int r;

        while (u->running < FETCH_PARALLEL_DEFAULT && u->next < u->n_blobs) {
                UnpackBlob *b = &u->blobs[u->next];

                r = fetcher_call(u->manager, &b->slot, PULL_FETCH_TIMEOUT_USEC, on_open_blob, b, "OpenBlob",
                                 "s", b->digest);
                if (r < 0) {
                        log_error_errno(r, "Failed to call OpenBlob for %s: %m", b->digest);
                        image_unpack_fail(u, "Cannot reach the berth fetcher: %s", strerror(-r));
                        return;
                }
                u->next++;
                u->running++;
        }
        if (u->running == 0 && u->next >= u->n_blobs && unpack_complete(u->unpack))
                image_unpack_complete(u); /* else unpack.c calls back */
}

static int on_open_blob(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        UnpackBlob *b = userdata;
        ImageUnpack *u = b->owner;
        Transfer *t = u->transfer;
        struct stat st;
        int fd, r;

        b->slot = sd_bus_slot_unref(b->slot);
        u->running--;

        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);

                if (sd_bus_error_has_name(e, BERTH_ERROR_NOT_FOUND))
                        image_unpack_fail(u,
                                          "layer %s of %s is not in the content store; pull the image again",
                                          b->digest, t->reference);
                else if (bus_error_is_berth(e) && e->message)
                        image_unpack_fail(u, "%s", e->message);
                else if (bus_error_is_gone(e))
                        image_unpack_fail(u, "The berth fetcher is not reachable (%s)",
                                          e->message ?: e->name);
                else
                        image_unpack_fail(u, "OpenBlob failed: %s", e->message ?: e->name);
                return 0;
        }
        r = sd_bus_message_read(m, "h", &fd);
        if (r < 0) {
                image_unpack_fail(u, "Malformed reply from the fetcher for '%s'", b->digest);
                return 0;
        }
        /* The unpacker re-hashes the layer (compressed and uncompressed) while unpacking. Still, what we
         * were handed must be what was asked for. */
        if (fstat(fd, &st) < 0) {
                image_unpack_fail(u, "Failed to process '%s': %m", b->digest);
                return 0;
        }
        if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size != b->size) {
                image_unpack_fail(
                        u, "The fetcher returned layer '%s' with %" PRIu64 " bytes, expected %" PRIu64,
                        b->digest, (uint64_t) st.st_size, b->size);
                return 0;
        }
        /* Kept open (a copy) until the unpack ends: the unpacker reads it when the layers below are
         * committed. */
        r = unpack_layer_ready(u->unpack, b->digest, fd);
        if (r < 0) {
                image_unpack_fail(u, "Failed to process '%s': %s", b->digest, strerror(-r));
                return 0;
        }
        image_unpack_dispatch(u);
        return 0;
}

static void on_unpack_progress(void *userdata) {
        ImageUnpack *u = userdata;

        /* A layer got committed: the unpack may be complete now. */
        if (transfer_is_running(u->transfer) && u->running == 0 && u->next >= u->n_blobs)
                image_unpack_dispatch(u);
}

static void on_unpack_fail(void *userdata, const char *message) {
        ImageUnpack *u = userdata;

        if (transfer_is_running(u->transfer))
                image_unpack_fail(u, "%s", message);
}

static void on_unpack_layer_state(void *userdata, const char *digest, const char *state) {
        ImageUnpack *u = userdata;
        TransferBlob *b = transfer_find_blob(u->transfer, digest);

        if (b)
                transfer_blob_update(u->transfer, b, state, b->total, b->total);
}

static void owner_cancel(void *owner) {
        image_unpack_stop(owner);
}

static void owner_free(void *owner) {
        image_unpack_free(owner);
}

static bool owner_uses_chain(void *owner, const char *chain_id) {
        ImageUnpack *u = owner;

        return unpack_uses_chain(u->unpack, chain_id);
}

static const TransferOwnerOps image_unpack_ops = {
        .cancel = owner_cancel,
        .free = owner_free,
        .uses_chain = owner_uses_chain,
};

/* Starts unpacking platform ip of the recorded image img into transfer t. The arguments are copied. On
 * failure nothing was started and t is untouched; -EBADMSG: the record is damaged. */
static int image_unpack_start(Transfer *t, const Image *img, const ImagePlatform *ip) {
        _cleanup_free_ char **digests = NULL, **media_types = NULL, **diff_ids = NULL;
        _cleanup_(image_unpack_freep) ImageUnpack *u = NULL;
        int r;

        if (!t || !img || !ip || !ip->platform || !img->target_digest)
                return -EINVAL;
        if (ip->n_layers > LAYERS_MAX || !ip->chain_ids || g_strv_length(ip->chain_ids) != ip->n_layers)
                return -EBADMSG;
        for (size_t l = 0; l < ip->n_layers; l++)
                if (!digest_is_valid(ip->layers[l].digest) || !digest_is_valid(ip->layers[l].diff_id) ||
                    !digest_is_valid(ip->chain_ids[l]) ||
                    media_type_kind(ip->layers[l].media_type) != MEDIA_KIND_LAYER)
                        return -EBADMSG;

        digests = calloc(ip->n_layers + 1, sizeof(char *));
        media_types = calloc(ip->n_layers + 1, sizeof(char *));
        diff_ids = calloc(ip->n_layers + 1, sizeof(char *));
        if (!digests || !media_types || !diff_ids)
                return -ENOMEM;
        for (size_t l = 0; l < ip->n_layers; l++) {
                digests[l] = ip->layers[l].digest;
                media_types[l] = ip->layers[l].media_type;
                diff_ids[l] = ip->layers[l].diff_id;
        }

        u = calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        u->manager = t->manager;
        u->transfer = t;
        u->target_digest = strdup(img->target_digest);
        u->platform = strdup(ip->platform);
        u->chain_ids = g_strdupv(ip->chain_ids);
        u->blobs = calloc(ip->n_layers ?: 1, sizeof(UnpackBlob));
        if (!u->target_digest || !u->platform || !u->chain_ids || !u->blobs)
                return -ENOMEM;

        const UnpackCallbacks cb = {
                .on_progress = on_unpack_progress,
                .on_fail = on_unpack_fail,
                .on_layer_state = on_unpack_layer_state,
                .userdata = u,
        };
        r = unpack_new(t->manager, t->id, &cb, &u->unpack);
        if (r < 0)
                return r;
        r = unpack_add_platform(u->unpack, 0, ip->chain_ids, digests, diff_ids, media_types, ip->n_layers);
        if (r < 0)
                return r;
        /* One OpenBlob per digest, however many layers share it. The blobs are here already: their rows
         * start as "exists", as in a pull that found them. */
        for (size_t l = 0; l < ip->n_layers; l++) {
                const ImageLayer *il = &ip->layers[l];
                TransferBlob *tb = NULL;
                bool seen = false;

                for (size_t k = 0; !seen && k < u->n_blobs; k++)
                        seen = streq(u->blobs[k].digest, il->digest);
                if (seen)
                        continue;
                u->blobs[u->n_blobs] =
                        (UnpackBlob){ .owner = u, .digest = strdup(il->digest), .size = il->size };
                if (!u->blobs[u->n_blobs].digest)
                        return -ENOMEM;
                u->n_blobs++;
                r = transfer_add_blob(t, il->digest, il->media_type, il->size, &tb);
                if (r < 0)
                        return r;
                if (tb)
                        transfer_blob_update(t, tb, "exists", tb->total, tb->total);
        }
        transfer_set_image_digest(t, img->target_digest);
        transfer_set_state(t, TRANSFER_UNPACKING);
        transfer_set_owner(t, &image_unpack_ops, u);
        image_unpack_dispatch(TAKE_PTR(u));
        return 0;
}

/* ---- UnpackImage ----------------------------------------------------------------------------------- */

int broker_start_unpack(Manager *manager, uid_t uid, const char *reference_arg, const char *platform_arg,
                        sd_bus_message *watcher, const char **ret_path, sd_bus_error *error) {
        _cleanup_free_ char *reference = NULL, *msg = NULL;
        _cleanup_(platform_done) Platform wanted = {};
        const ImagePlatform *ip;
        const Image *img;
        Transfer *t;
        int r;

        r = broker_normalise_reference(reference_arg, NULL, &reference, error);
        if (r < 0)
                return r;
        if (!isempty(platform_arg)) {
                if (strlen(platform_arg) > PLATFORM_STRING_MAX)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Platform string too long.");
                r = platform_parse(platform_arg, &wanted, &msg);
                if (r < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Invalid platform '%s': %s", platform_arg,
                                                 msg ?: "malformed");
        }
        img = image_store_get(manager->images, reference);
        if (!img)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No image '%s'.", reference);
        ip = broker_image_platform(img, isempty(platform_arg) ? NULL : &wanted);
        if (!ip) {
                _cleanup_free_ char *have = image_platforms_string(img);

                return sd_bus_error_setf(
                        error, BERTH_ERROR_NOT_FOUND, "Image '%s' has no platform %s (it has %s).",
                        reference, isempty(platform_arg) ? "this machine runs" : platform_arg, strna(have));
        }

        /* The same unpack already running: share it. */
        t = transfer_find_running(manager, reference, ip->platform, TRANSFER_FLAG_UNPACK_ONLY);
        if (t) {
                r = transfer_add_watcher(t, watcher);
                if (r < 0)
                        return r;
                *ret_path = t->path;
                return 0;
        }
        r = broker_check_transfer_limits(manager, uid, error);
        if (r < 0)
                return r;

        r = transfer_new(manager, uid, reference, ip->platform, TRANSFER_FLAG_UNPACK_ONLY, &t);
        if (r < 0)
                return log_error_errno(r, "Failed to create a transfer for '%s': %m", reference);
        /* Before it starts: an unpack with nothing to do finishes at once. */
        r = transfer_add_watcher(t, watcher);
        if (r < 0) {
                transfer_free(t);
                return r;
        }
        r = image_unpack_start(t, img, ip);
        if (r == -EBADMSG) {
                transfer_free(t);
                return sd_bus_error_setf(error, BERTH_ERROR_BAD_CONTENT,
                                         "The record of '%s' is damaged; pull the image again.", reference);
        }
        if (r < 0) {
                log_error_errno(r, "Failed to start unpacking '%s': %m", reference);
                transfer_free(t);
                return sd_bus_error_setf(error, BERTH_ERROR_SERVICE_UNAVAILABLE,
                                         "Cannot start the unpack: %s", strerror(-r));
        }
        log_info("Transfer %" PRIu32 ": unpacking '%s' for %s for uid %u.", t->id, reference, ip->platform,
                 (unsigned) uid);
        *ret_path = t->path;
        return 0;
}

static int unpack_image_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        ReferenceArgs *a = args;
        const char *path = NULL;
        uid_t uid;
        int r;

        r = bus_check_flags(a->flags, 0, error);
        if (r < 0)
                return r;
        r = bus_message_sender_uid(m, &uid);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Cannot establish the caller's identity.");
        r = broker_start_unpack(manager, uid, a->reference, a->platform, m, &path, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "o", path);
}

int method_unpack_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return broker_authorize_reference(m, unpack_image_authorized, userdata, error);
}
