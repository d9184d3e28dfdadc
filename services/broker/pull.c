/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "berth-limits.h"
#include "events.h"
#include "bus-names.h"
#include "bus-error.h"
#include "bus-util.h"
#include "digest.h"
#include "fetcher-client.h"
#include "fs-util.h"
#include "image-record.h"
#include "image-store.h"
#include "image-verify.h"
#include "json-util.h"
#include "log.h"
#include "pull.h"
#include "unpack.h"

/* A pull, step by step:
 *   1. Resolve(reference) at the fetcher → the top-level document (index or manifest) as an fd;
 *   2. re-hash it ourselves and compare with the digest (the fetcher's word is not enough), parse it;
 *   3. index: pick the platform(s); FetchBlob each manifest, re-hash, parse;
 *   4. FetchBlob each config, re-hash, parse; diff_ids must match the layers one to one;
 *   5. FetchBlob the layers, FETCH_PARALLEL_DEFAULT at a time, progress fed from the fetcher's signals;
 *   5b. meanwhile, unpack.c turns the layers into committed snapshots bottom-up as their blobs arrive
 *       (state "unpacking" once only unpacks remain), unless PULL_FLAG_NO_UNPACK;
 *   6. write the image record; Finished("done").
 * Any failure ends the transfer with the fetcher's (or our) one-line message. */

typedef struct Pull Pull;

typedef enum JobKind {
        JOB_MANIFEST,
        JOB_CONFIG,
        JOB_LAYER,
} JobKind;

typedef struct PullJob {
        Pull *pull;
        JobKind kind;
        char *digest;
        char *media_type;
        uint64_t size;
        sd_bus_slot *slot;   /* the FetchBlob call while in flight */
        unsigned generation; /* p->fetcher_restarts when the call was sent */
        char *data;          /* JOB_CONFIG once done: the verified bytes, for a platform whose manifest
                              * names the same config only after it was read (platforms sharing one) */
} PullJob;

typedef struct PullPlatform {
        char *manifest_digest;
        char *manifest_media_type;
        uint64_t manifest_size;
        Platform index_platform; /* from the index entry; os NULL when none */
        OciManifest *manifest;
        OciImageConfig *config;
} PullPlatform;

struct Pull {
        Manager *manager;
        Transfer *transfer;
        ImageReference *ref;
        char *name; /* canonical repository name, as the fetcher wants it */
        Platform wanted;
        bool explicit_platform;
        bool all_platforms;
        char *fetcher; /* unique bus name of the fetcher instance serving us */
        sd_bus_slot *resolve_slot;
        char *resolve_reference;     /* what Resolve was asked, to ask again */
        unsigned resolve_generation; /* p->fetcher_restarts when Resolve was sent */
        unsigned fetcher_restarts; /* fetcher instances that died under us (≤ PULL_SERVICE_RESTARTS_MAX) */

        char *target_digest;
        char *target_media_type;
        uint64_t target_size;

        PullPlatform *platforms;
        size_t n_platforms;

        GPtrArray *jobs; /* PullJob* (owned), every job ever created, for dedup by digest */
        GQueue queue;    /* PullJob* not started */
        unsigned running;
        unsigned parallel;

        Unpack *unpack; /* NULL with PULL_FLAG_NO_UNPACK */
};

static void pull_job_free(gpointer p) {
        PullJob *j = p;

        sd_bus_slot_unref(j->slot);
        free(j->data);
        free(j->digest);
        free(j->media_type);
        free(j);
}

static void pull_platform_done(PullPlatform *p) {
        free(p->manifest_digest);
        free(p->manifest_media_type);
        platform_done(&p->index_platform);
        oci_manifest_free(p->manifest);
        oci_image_config_free(p->config);
}

static void pull_free(Pull *p) {
        if (!p)
                return;
        g_queue_clear(&p->queue);
        if (p->jobs)
                g_ptr_array_unref(p->jobs);
        sd_bus_slot_unref(p->resolve_slot);
        unpack_free(p->unpack);
        image_reference_free(p->ref);
        platform_done(&p->wanted);
        for (size_t i = 0; i < p->n_platforms; i++)
                pull_platform_done(&p->platforms[i]);
        free(p->platforms);
        free(p->name);
        free(p->fetcher);
        free(p->resolve_reference);
        free(p->target_digest);
        free(p->target_media_type);
        free(p);
}

static bool pull_fetching(Pull *p, const char *digest) {
        if (!p || !p->jobs)
                return false;
        for (guint i = 0; i < p->jobs->len; i++) {
                PullJob *j = p->jobs->pdata[i];

                if (j->slot && streq(j->digest, digest))
                        return true;
        }
        return false;
}

static Pull *pull_of(const Transfer *t);

/* ---- ending ---------------------------------------------------------------------------------------- */

static void cancel_fetch(Pull *p, const char *digest) {
        int r;

        /* The fetcher shares one download among all its callers: leave it running when another transfer
         * of ours still waits for the same blob. */
        GHashTableIter iter;
        gpointer value;
        g_hash_table_iter_init(&iter, p->manager->transfers);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                Transfer *t = value;

                if (t != p->transfer && transfer_is_running(t) && pull_fetching(pull_of(t), digest))
                        return;
        }
        r = fetcher_call(p->manager, NULL, 0, NULL, NULL, "CancelFetch", "s", digest);
        if (r < 0)
                log_debug_errno(r, "Failed to send CancelFetch for %s: %m", digest);
}

/* Drops every call in flight (their replies are ignored) and, when asked, tells the fetcher to stop. */
static void pull_stop(Pull *p, bool cancel_downloads) {
        p->resolve_slot = sd_bus_slot_unref(p->resolve_slot);
        g_queue_clear(&p->queue);
        for (guint i = 0; p->jobs && i < p->jobs->len; i++) {
                PullJob *j = p->jobs->pdata[i];

                if (!j->slot)
                        continue;
                j->slot = sd_bus_slot_unref(j->slot);
                if (cancel_downloads)
                        cancel_fetch(p, j->digest);
        }
        p->running = 0;
        unpack_stop(p->unpack);
}

static void pull_cancel(Pull *p) {
        pull_stop(p, true);
}

static void pull_fail(Pull *p, const char *format, ...) _printf_(2, 3);
static void pull_fail(Pull *p, const char *format, ...) {
        _cleanup_free_ char *msg = format_varargs(format);

        log_error("Pull of '%s' (transfer %" PRIu32 ") failed: %s", p->transfer->reference, p->transfer->id,
                  strna(msg));
        pull_stop(p, true);
        transfer_finish(p->transfer, TRANSFER_FAILED, msg ?: "Pull failed");
}

static void pull_fail_bus(Pull *p, const sd_bus_error *e, const char *what) {
        /* The fetcher's org.berth.Error.* messages are written for the user already: pass them as is. */
        if (bus_error_is_berth(e) && e->message)
                pull_fail(p, "%s", e->message);
        else if (bus_error_is_gone(e))
                pull_fail(p, "The berth fetcher is not reachable (%s)", e->message ?: e->name);
        else
                pull_fail(p, "%s failed: %s", what, e ? (e->message ?: e->name) : "unknown error");
}

/* The fetcher went away under a call of ours (crash, kill, restart; never idle exit, it is busy): the
 * next call starts a new instance by activation, which resumes a download from its partial ingest. All
 * calls to one instance fail together; they count as one restart, told apart by the generation they
 * were sent in. Returns 0 when the call may be sent again, -ECONNRESET when the fetcher died too often. */
static int pull_fetcher_gone(Pull *p, unsigned *generation, const sd_bus_error *e) {
        if (*generation == p->fetcher_restarts) {
                p->fetcher_restarts++;
                p->fetcher = mfree(p->fetcher);
                if (p->fetcher_restarts <= PULL_SERVICE_RESTARTS_MAX)
                        log_warning("Transfer %" PRIu32
                                    ": the berth fetcher went away (%s); starting it again and "
                                    "resuming (restart %u of %u).",
                                    p->transfer->id, e && e->message ? e->message : "no reply",
                                    p->fetcher_restarts, PULL_SERVICE_RESTARTS_MAX);
        }
        if (p->fetcher_restarts > PULL_SERVICE_RESTARTS_MAX)
                return -ECONNRESET;
        *generation = p->fetcher_restarts;
        return 0;
}

static void pull_fail_fetcher_died(Pull *p, const sd_bus_error *e) {
        pull_fail(p,
                  "The berth fetcher stopped %u times during this pull (last: %s); giving up. What was "
                  "downloaded is kept: pull again to resume",
                  p->fetcher_restarts, e && e->message ? e->message : "no reply");
}

/* ---- jobs ------------------------------------------------------------------------------------------- */

static void pull_dispatch(Pull *p);
static int on_fetch_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

static PullJob *pull_find_job(Pull *p, const char *digest) {
        for (guint i = 0; i < p->jobs->len; i++) {
                PullJob *j = p->jobs->pdata[i];

                if (streq(j->digest, digest))
                        return j;
        }
        return NULL;
}

static int pull_add_job(Pull *p, JobKind kind, const char *digest, const char *media_type, uint64_t size) {
        PullJob *j;
        int r;

        /* One download per digest, however many platforms or layers share it. */
        if (pull_find_job(p, digest))
                return 0;
        r = transfer_add_blob(p->transfer, digest, media_type, size, NULL);
        if (r < 0)
                return r;
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        *j = (PullJob){ .pull = p,
                        .kind = kind,
                        .size = size,
                        .digest = strdup(digest),
                        .media_type = strdup(media_type) };
        if (!j->digest || !j->media_type) {
                pull_job_free(j);
                return -ENOMEM;
        }
        g_ptr_array_add(p->jobs, j);
        g_queue_push_tail(&p->queue, j);
        return 1;
}

static bool pull_platforms_complete(Pull *p) {
        for (size_t i = 0; i < p->n_platforms; i++)
                if (!p->platforms[i].manifest || !p->platforms[i].config)
                        return false;
        return true;
}

static void pull_complete(Pull *p);

static void pull_dispatch(Pull *p) {
        PullJob *j;
        int r;

        while (p->running < p->parallel && (j = g_queue_pop_head(&p->queue))) {
                j->generation = p->fetcher_restarts;
                r = fetcher_call(p->manager, &j->slot, PULL_FETCH_TIMEOUT_USEC, on_fetch_reply, j,
                                 /* For the caller's uid: the fetcher shares its download slots fairly
                                  * between users (issue 12, f4). */
                                 "FetchBlobFor", "sstsut", p->name, j->digest, j->size, j->media_type,
                                 (uint32_t) p->transfer->uid, UINT64_C(0));
                if (r < 0) {
                        log_error_errno(r, "Failed to call FetchBlob for %s: %m", j->digest);
                        pull_fail(p, "Cannot reach the berth fetcher: %s", strerror(-r));
                        return;
                }
                p->running++;
        }
        if (p->running == 0 && g_queue_is_empty(&p->queue)) {
                if (!pull_platforms_complete(p))
                        pull_fail(p, "Pull of '%s' ended without a complete image", p->transfer->reference);
                else if (!unpack_complete(p->unpack))
                        transfer_set_state(p->transfer, TRANSFER_UNPACKING); /* unpack.c calls back */
                else
                        pull_complete(p);
        }
}

static void on_unpack_progress(void *userdata) {
        Pull *p = userdata;

        /* A layer got committed: the pull may be complete now (pull_dispatch decides). */
        if (transfer_is_running(p->transfer) && !p->resolve_slot && p->n_platforms > 0 && p->running == 0 &&
            g_queue_is_empty(&p->queue) && pull_platforms_complete(p))
                pull_dispatch(p);
}

static void on_unpack_layer_state(void *userdata, const char *digest, const char *state) {
        Pull *p = userdata;
        TransferBlob *b = transfer_find_blob(p->transfer, digest);

        if (b)
                transfer_blob_update(p->transfer, b, state, b->total, b->total);
}

static void on_unpack_fail(void *userdata, const char *message) {
        Pull *p = userdata;

        if (transfer_is_running(p->transfer))
                pull_fail(p, "%s", message);
}

static int pull_new_unpack(Pull *p) {
        const UnpackCallbacks cb = {
                .on_progress = on_unpack_progress,
                .on_fail = on_unpack_fail,
                .on_layer_state = on_unpack_layer_state,
                .userdata = p,
        };

        return unpack_new(p->manager, p->transfer->id, &cb, &p->unpack);
}

static bool pull_uses_chain(Pull *p, const char *chain_id) {
        return p && unpack_uses_chain(p->unpack, chain_id);
}

static void owner_cancel(void *owner) {
        pull_cancel(owner);
}

static void owner_free(void *owner) {
        pull_free(owner);
}

static bool owner_uses_chain(void *owner, const char *chain_id) {
        return pull_uses_chain(owner, chain_id);
}

static const TransferOwnerOps pull_owner_ops = {
        .cancel = owner_cancel,
        .free = owner_free,
        .uses_chain = owner_uses_chain,
};

/* The pull a transfer runs, or NULL for a transfer of other work (or none yet). */
static Pull *pull_of(const Transfer *t) {
        return t->owner_ops == &pull_owner_ops ? t->owner : NULL;
}

/* Which platforms of a pull get unpacked: a single-platform pull its platform; with all platforms only
 * those this machine can run (containerd unpacks the default platform only, too). */
static int platform_add_unpack(Pull *p, PullPlatform *pp) {
        _cleanup_(platform_done) Platform def = {};
        _cleanup_free_ char **digests = NULL, **media_types = NULL;
        g_auto(GStrv) chain_ids = NULL;
        const OciManifest *mf = pp->manifest;
        int r;

        if (!p->unpack)
                return 0;
        if (p->all_platforms) {
                r = platform_default(&def);
                if (r < 0)
                        return r;
                if (!platform_matches(&def,
                                      pp->index_platform.os ? &pp->index_platform : &pp->config->platform))
                        return 0;
        }
        r = oci_chain_ids(pp->config->diff_ids, pp->config->n_diff_ids, &chain_ids);
        if (r < 0)
                return r;
        digests = calloc(mf->n_layers + 1, sizeof(char *));
        media_types = calloc(mf->n_layers + 1, sizeof(char *));
        if (!digests || !media_types)
                return -ENOMEM;
        for (size_t l = 0; l < mf->n_layers; l++) {
                digests[l] = mf->layers[l].digest;
                media_types[l] = mf->layers[l].media_type;
        }
        return unpack_add_platform(p->unpack, (size_t) (pp - p->platforms), chain_ids, digests,
                                   pp->config->diff_ids, media_types, mf->n_layers);
}

static int platform_config_done(Pull *p, PullPlatform *pp, const char *data, size_t size) {
        _cleanup_(oci_image_config_freep) OciImageConfig *config = NULL;
        _cleanup_free_ char *msg = NULL;
        int r;

        r = oci_image_config_parse(data, size, &config, &msg);
        if (r < 0) {
                pull_fail(p, "Invalid image config '%s': %s", pp->manifest->config.digest, strna(msg));
                return r;
        }
        r = image_check_config(pp->manifest, pp->manifest_digest, config, &msg);
        if (r < 0) {
                pull_fail(p, "%s", strna(msg));
                return r;
        }
        if (p->explicit_platform && !pp->index_platform.os &&
            !platform_matches(&p->wanted, &config->platform)) {
                _cleanup_free_ char *have = platform_to_string(&config->platform),
                                    *want = platform_to_string(&p->wanted);
                pull_fail(p, "Image '%s' is for platform %s, not %s", p->transfer->reference, strna(have),
                          strna(want));
                return -ENOENT;
        }
        pp->config = TAKE_PTR(config);

        for (size_t l = 0; l < pp->manifest->n_layers; l++) {
                const Descriptor *d = &pp->manifest->layers[l];

                r = pull_add_job(p, JOB_LAYER, d->digest, d->media_type, d->size);
                if (r < 0) {
                        pull_fail(p, "Too many blobs in '%s'", p->transfer->reference);
                        return r;
                }
        }
        r = platform_add_unpack(p, pp);
        if (r < 0) {
                pull_fail(p, "Cannot plan the unpack of '%s': %s", pp->manifest_digest, strerror(-r));
                return r;
        }
        return 0;
}

static int platform_manifest_done(Pull *p, PullPlatform *pp, const char *data, size_t size,
                                  const char *media_type) {
        _cleanup_(oci_manifest_freep) OciManifest *manifest = NULL;
        _cleanup_free_ char *msg = NULL;
        int r;

        r = oci_manifest_parse(data, size, media_type, &manifest, &msg);
        if (r < 0) {
                pull_fail(p, "Invalid manifest '%s': %s", pp->manifest_digest, strna(msg));
                return r;
        }
        r = image_check_manifest(manifest, pp->manifest_digest, &msg);
        if (r < 0) {
                pull_fail(p, "%s", strna(msg));
                return r;
        }
        pp->manifest = TAKE_PTR(manifest);
        r = pull_add_job(p, JOB_CONFIG, pp->manifest->config.digest, pp->manifest->config.media_type,
                         pp->manifest->config.size);
        if (r < 0) {
                pull_fail(p, "Too many blobs in '%s'", p->transfer->reference);
                return r;
        }
        /* The config may be read already (two platforms sharing it, the other's manifest came first): no
         * job will complete for it again, so apply it now (bytes verified when read, size as the job's). */
        PullJob *j = pull_find_job(p, pp->manifest->config.digest);
        if (r == 0 && j && j->kind == JOB_CONFIG && j->data) {
                if (j->size != pp->manifest->config.size) {
                        pull_fail(p, "Manifest '%s' gives config '%s' another size", pp->manifest_digest,
                                  j->digest);
                        return -EBADMSG;
                }
                return platform_config_done(p, pp, j->data, j->size);
        }
        return 0;
}

static int job_done(Pull *p, PullJob *j, int fd) {
        _cleanup_free_ char *data = NULL, *msg = NULL;
        struct stat st;
        int r;

        switch (j->kind) {
        case JOB_MANIFEST:
                r = image_read_verified(fd, j->digest, j->size, MANIFEST_SIZE_MAX, &data, &msg);
                if (r < 0) {
                        pull_fail(p, "Manifest '%s': %s", j->digest, msg ?: strerror(-r));
                        return r;
                }
                for (size_t i = 0; i < p->n_platforms; i++)
                        if (!p->platforms[i].manifest && streq(p->platforms[i].manifest_digest, j->digest)) {
                                r = platform_manifest_done(p, &p->platforms[i], data, j->size,
                                                           j->media_type);
                                if (r < 0)
                                        return r;
                        }
                return 0;

        case JOB_CONFIG:
                r = image_read_verified(fd, j->digest, j->size, CONFIG_SIZE_MAX, &data, &msg);
                if (r < 0) {
                        pull_fail(p, "Config '%s': %s", j->digest, msg ?: strerror(-r));
                        return r;
                }
                for (size_t i = 0; i < p->n_platforms; i++) {
                        PullPlatform *pp = &p->platforms[i];

                        if (pp->manifest && !pp->config && streq(pp->manifest->config.digest, j->digest)) {
                                r = platform_config_done(p, pp, data, j->size);
                                if (r < 0)
                                        return r;
                        }
                }
                j->data = TAKE_PTR(data);
                return 0;

        case JOB_LAYER:
                /* Layers are not read here: the unpacker re-hashes them (compressed and uncompressed)
                 * while unpacking. Still, what we were handed must be what was asked for. */
                if (fstat(fd, &st) < 0)
                        return -errno;
                if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size != j->size) {
                        pull_fail(p,
                                  "The fetcher returned layer '%s' with %" PRIu64
                                  " bytes, expected %" PRIu64,
                                  j->digest, (uint64_t) st.st_size, j->size);
                        return -EBADMSG;
                }
                /* Kept open (a copy) until the pull ends: the unpacker reads it when the layers below
                 * are committed. */
                if (p->unpack) {
                        r = unpack_layer_ready(p->unpack, j->digest, fd);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        return -EINVAL;
}

static void remember_fetcher(Pull *p, sd_bus_message *reply) {
        const char *sender = sd_bus_message_get_sender(reply);
        char *s;

        if (!sender || streq_ptr(sender, p->fetcher))
                return;
        s = strdup(sender);
        if (!s)
                return;
        free(p->fetcher);
        p->fetcher = s;
}

static int on_fetch_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        PullJob *j = userdata;
        Pull *p = j->pull;
        Transfer *t = p->transfer;
        TransferBlob *b;
        bool existed;
        int fd, r;

        j->slot = sd_bus_slot_unref(j->slot);
        p->running--;

        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);

                if (bus_error_is_gone(e)) {
                        TransferBlob *gone = transfer_find_blob(t, j->digest);

                        if (pull_fetcher_gone(p, &j->generation, e) < 0) {
                                pull_fail_fetcher_died(p, e);
                                return 0;
                        }
                        /* Said in the progress: the row shows "retrying" until the new instance reports. */
                        if (gone)
                                transfer_blob_update(t, gone, "retrying", gone->done, gone->total);
                        g_queue_push_head(&p->queue, j);
                        pull_dispatch(p);
                        return 0;
                }
                pull_fail_bus(p, e, "FetchBlob");
                return 0;
        }
        remember_fetcher(p, m);
        r = sd_bus_message_read(m, "h", &fd);
        if (r < 0) {
                pull_fail(p, "Malformed reply from the fetcher for '%s'", j->digest);
                return 0;
        }
        b = transfer_find_blob(t, j->digest);
        existed = b && streq(b->state, "exists");
        if (b && !existed)
                transfer_blob_update(t, b, "verifying", b->done, b->total);

        r = job_done(p, j, fd);
        if (r < 0) {
                if (transfer_is_running(t))
                        pull_fail(p, "Failed to process '%s': %s", j->digest, strerror(-r));
                return 0;
        }
        if (!transfer_is_running(t))
                return 0;
        if (b)
                transfer_blob_update(t, b, existed ? "exists" : "done", b->total, b->total);
        pull_dispatch(p);
        return 0;
}

/* The record of this pull: its platforms, with the unpacked ones marked. */
static int build_image(Pull *p, Image **ret) {
        _cleanup_free_ RecordPlatform *l = calloc(p->n_platforms ?: 1, sizeof(RecordPlatform));

        if (!l)
                return -ENOMEM;
        for (size_t k = 0; k < p->n_platforms; k++)
                l[k] = (RecordPlatform){
                        .manifest_digest = p->platforms[k].manifest_digest,
                        .manifest_media_type = p->platforms[k].manifest_media_type,
                        .manifest_size = p->platforms[k].manifest_size,
                        .index_platform = &p->platforms[k].index_platform,
                        .manifest = p->platforms[k].manifest,
                        .config = p->platforms[k].config,
                        .unpacked = unpack_platform_unpacked(p->unpack, k),
                };
        return image_record_build(p->manager->images, p->transfer->reference, p->target_digest,
                                  p->target_media_type, p->target_size, l, p->n_platforms, ret);
}

static void pull_complete(Pull *p) {
        _cleanup_(image_freep) Image *i = NULL;
        int r;

        r = build_image(p, &i);
        if (r >= 0)
                r = image_store_put(p->manager->images, &i);
        if (r < 0) {
                log_error_errno(r, "Failed to save the image record of '%s': %m", p->transfer->reference);
                pull_fail(p, "Failed to save the image record: %s", strerror(-r));
                return;
        }
        log_info("Pulled '%s' (%s), transfer %" PRIu32 ".", p->transfer->reference, p->target_digest,
                 p->transfer->id);
        broker_event_emit(p->manager, EVENT_TYPE_IMAGE, "pull", p->target_digest, p->transfer->reference, 0,
                          NULL);
        transfer_finish(p->transfer, TRANSFER_DONE, "");
}

/* ---- resolve ---------------------------------------------------------------------------------------- */

static int add_platform(Pull *p, const Descriptor *d) {
        PullPlatform *pp = &p->platforms[p->n_platforms];
        int r;

        *pp = (PullPlatform){
                .manifest_digest = strdup(d->digest),
                .manifest_media_type = strdup(d->media_type),
                .manifest_size = d->size,
        };
        p->n_platforms++;
        if (!pp->manifest_digest || !pp->manifest_media_type)
                return -ENOMEM;
        if (d->has_platform && d->platform.os) {
                pp->index_platform.os = strdup(d->platform.os);
                pp->index_platform.architecture =
                        d->platform.architecture ? strdup(d->platform.architecture) : NULL;
                pp->index_platform.variant = d->platform.variant ? strdup(d->platform.variant) : NULL;
                if (!pp->index_platform.os)
                        return -ENOMEM;
        }
        if (d->size > MANIFEST_SIZE_MAX) {
                pull_fail(p, "Manifest '%s' claims %" PRIu64 " bytes, more than the limit of %u", d->digest,
                          d->size, MANIFEST_SIZE_MAX);
                return -EFBIG;
        }
        r = pull_add_job(p, JOB_MANIFEST, d->digest, d->media_type, d->size);
        return r < 0 ? r : 0;
}

static int resolved_index(Pull *p, const char *data, size_t size) {
        _cleanup_(oci_index_freep) OciIndex *index = NULL;
        _cleanup_free_ char *msg = NULL;
        int r;

        r = oci_index_parse(data, size, p->target_media_type, &index, &msg);
        if (r < 0) {
                pull_fail(p, "Invalid index '%s': %s", p->target_digest, strna(msg));
                return r;
        }
        p->platforms = calloc(index->n_manifests ?: 1, sizeof(PullPlatform));
        if (!p->platforms)
                return -ENOMEM;

        if (p->all_platforms) {
                for (size_t i = 0; i < index->n_manifests; i++) {
                        const Descriptor *d = &index->manifests[i];

                        /* Attestations and other artifacts ride in indexes as "unknown/unknown". */
                        if (media_type_kind(d->media_type) != MEDIA_KIND_MANIFEST ||
                            (d->has_platform && streq_ptr(d->platform.os, "unknown")))
                                continue;
                        r = add_platform(p, d);
                        if (r < 0)
                                return r;
                }
                if (p->n_platforms == 0) {
                        pull_fail(p, "Index '%s' lists no image manifests", p->target_digest);
                        return -ENOENT;
                }
                return 0;
        }

        const Descriptor *d = NULL;
        r = oci_index_select(index, &p->wanted, &d, &msg);
        if (r < 0) {
                pull_fail(p, "%s", msg ?: "No manifest for the requested platform");
                return r;
        }
        if (media_type_kind(d->media_type) != MEDIA_KIND_MANIFEST) {
                pull_fail(p, "Nested indexes are not supported ('%s')", d->digest);
                return -EMEDIUMTYPE;
        }
        return add_platform(p, d);
}

static int resolved_manifest(Pull *p, const char *data, size_t size) {
        int r;

        p->platforms = calloc(1, sizeof(PullPlatform));
        if (!p->platforms)
                return -ENOMEM;
        p->n_platforms = 1;
        p->platforms[0] = (PullPlatform){
                .manifest_digest = strdup(p->target_digest),
                .manifest_media_type = strdup(p->target_media_type),
                .manifest_size = p->target_size,
        };
        if (!p->platforms[0].manifest_digest || !p->platforms[0].manifest_media_type)
                return -ENOMEM;
        r = platform_manifest_done(p, &p->platforms[0], data, size, p->target_media_type);
        return r;
}

static int on_resolve_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_free_ char *data = NULL, *msg = NULL;
        const char *name, *digest, *media_type;
        Pull *p = userdata;
        Transfer *t = p->transfer;
        TransferBlob *b = NULL;
        MediaKind kind;
        uint64_t size;
        int fd, r;

        p->resolve_slot = sd_bus_slot_unref(p->resolve_slot);

        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);

                if (bus_error_is_gone(e)) {
                        if (pull_fetcher_gone(p, &p->resolve_generation, e) < 0) {
                                pull_fail_fetcher_died(p, e);
                                return 0;
                        }
                        r = fetcher_call(p->manager, &p->resolve_slot, PULL_FETCH_TIMEOUT_USEC,
                                         on_resolve_reply, p, "Resolve", "st", p->resolve_reference,
                                         UINT64_C(0));
                        if (r < 0)
                                pull_fail(p, "Cannot reach the berth fetcher: %s", strerror(-r));
                        return 0;
                }
                pull_fail_bus(p, e, "Resolve");
                return 0;
        }
        r = sd_bus_message_read(m, "sssth", &name, &digest, &media_type, &size, &fd);
        if (r < 0) {
                pull_fail(p, "Malformed Resolve reply from the fetcher");
                return 0;
        }
        /* Everything from the fetcher is checked as if it were hostile. */
        if (!streq(name, p->name)) {
                pull_fail(p, "The fetcher resolved '%s' instead of '%s'", name, p->name);
                return 0;
        }
        if (digest_validate(digest, NULL) < 0 || strlen(digest) >= DIGEST_STRING_MAX) {
                pull_fail(p, "The fetcher returned an invalid digest");
                return 0;
        }
        if (p->ref->digest && !digest_equal(p->ref->digest, digest)) {
                pull_fail(p, "The registry returned '%s' for '%s'", digest, t->reference);
                return 0;
        }
        kind = media_type_kind(media_type);
        if (kind != MEDIA_KIND_INDEX && kind != MEDIA_KIND_MANIFEST) {
                pull_fail(p, "Unsupported media type '%.200s' for '%s'", media_type, t->reference);
                return 0;
        }
        r = image_read_verified(fd, digest, size, MANIFEST_SIZE_MAX, &data, &msg);
        if (r < 0) {
                pull_fail(p, "'%s': %s", t->reference, msg ?: strerror(-r));
                return 0;
        }
        remember_fetcher(p, m);
        p->target_digest = strdup(digest);
        p->target_media_type = strdup(media_type);
        p->target_size = size;
        if (!p->target_digest || !p->target_media_type) {
                pull_fail(p, "Out of memory");
                return 0;
        }
        transfer_set_image_digest(t, digest);
        transfer_set_state(t, TRANSFER_DOWNLOADING);
        r = transfer_add_blob(t, digest, media_type, size, &b);
        if (r >= 0 && b)
                transfer_blob_update(t, b, "done", size, size);

        r = kind == MEDIA_KIND_INDEX ? resolved_index(p, data, size) : resolved_manifest(p, data, size);
        if (r < 0) {
                if (transfer_is_running(t))
                        pull_fail(p, "Failed to process '%s': %s", digest, strerror(-r));
                return 0;
        }
        if (transfer_is_running(t))
                pull_dispatch(p);
        return 0;
}

int pull_start(Transfer *t, ImageReference **ref, Platform *wanted) {
        _cleanup_free_ char *reference = NULL;
        Pull *p;
        int r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->manager = t->manager;
        p->transfer = t;
        p->parallel = FETCH_PARALLEL_DEFAULT;
        p->all_platforms = t->flags & PULL_FLAG_ALL_PLATFORMS;
        p->jobs = g_ptr_array_new_with_free_func(pull_job_free);
        g_queue_init(&p->queue);
        if (wanted) {
                p->wanted = *wanted;
                *wanted = (Platform){};
                p->explicit_platform = true;
        } else {
                r = platform_default(&p->wanted);
                if (r < 0) {
                        pull_free(p);
                        return r;
                }
        }
        p->name = image_reference_name(*ref);
        reference = image_reference_to_string(*ref);
        if (!p->name || !reference) {
                pull_free(p);
                return -ENOMEM;
        }
        p->ref = TAKE_PTR(*ref);

        if (!(t->flags & PULL_FLAG_NO_UNPACK)) {
                r = pull_new_unpack(p);
                if (r < 0) {
                        pull_free(p);
                        return r;
                }
        }

        r = fetcher_call(t->manager, &p->resolve_slot, PULL_FETCH_TIMEOUT_USEC, on_resolve_reply, p,
                         "Resolve", "st", reference, UINT64_C(0));
        if (r < 0) {
                pull_free(p);
                return r;
        }
        p->resolve_reference = TAKE_PTR(reference);
        transfer_set_owner(t, &pull_owner_ops, p);
        return 0;
}

/* ---- progress from the fetcher ------------------------------------------------------------------------ */

int pull_on_fetcher_progress(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *manager = userdata;
        const char *sender = sd_bus_message_get_sender(m), *digest, *state, *ours;
        uint64_t done, total;
        GHashTableIter iter;
        gpointer value;
        int r;

        r = sd_bus_message_read(m, "stts", &digest, &done, &total, &state);
        if (r < 0)
                return 0; /* malformed: ignore */
        ours = transfer_blob_state_from_string(state);
        if (!sender || !ours || !digest_is_valid(digest))
                return 0;

        g_hash_table_iter_init(&iter, manager->transfers);
        while (g_hash_table_iter_next(&iter, NULL, &value)) {
                Transfer *t = value;
                Pull *p = pull_of(t);
                TransferBlob *b;

                /* SECURITY: only the fetcher instance we asked, only for blobs this transfer is fetching
                 * right now; everything else is ignored. */
                if (!transfer_is_running(t) || !p ||
                    !(streq_ptr(p->fetcher, sender) || streq_ptr(manager->fetcher_owner, sender)) ||
                    !pull_fetching(p, digest))
                        continue;
                b = transfer_find_blob(t, digest);
                if (!b)
                        continue;
                /* "done" is ours to say once we checked the blob; the fetcher's "done" means verified. */
                transfer_blob_update(t, b, streq(ours, "done") ? "verifying" : ours, done, total);
        }
        return 0;
}
