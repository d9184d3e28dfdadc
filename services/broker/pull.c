/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "berth-limits.h"
#include "bus-names.h"
#include "bus-error.h"
#include "bus-util.h"
#include "digest.h"
#include "fetcher-client.h"
#include "fs-util.h"
#include "image-store.h"
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
        sd_bus_slot *slot; /* the FetchBlob call while in flight */
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

        /* UnpackImage: no registry, the layers come from the content store (OpenBlob); at the end the
         * record's platform is marked unpacked instead of a record being written. */
        bool unpack_only;
        char *unpack_platform; /* the record's platform string */
        char **unpack_chain_ids;
};

static void pull_job_free(gpointer p) {
        PullJob *j = p;

        sd_bus_slot_unref(j->slot);
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
        free(p->target_digest);
        free(p->target_media_type);
        free(p->unpack_platform);
        g_strfreev(p->unpack_chain_ids);
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
        pull_stop(p, !p->unpack_only);
}

static void pull_fail(Pull *p, const char *format, ...) _printf_(2, 3);
static void pull_fail(Pull *p, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, format);
        if (vasprintf(&msg, format, ap) < 0)
                msg = NULL;
        va_end(ap);

        log_error("Pull of '%s' (transfer %" PRIu32 ") failed: %s", p->transfer->reference, p->transfer->id,
                  strna(msg));
        pull_stop(p, !p->unpack_only);
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

/* ---- reading what the fetcher hands us -------------------------------------------------------------- */

/* Reads a small blob from the fd the fetcher passed (positional reads: the file description may be
 * shared), checks it is a regular file of the announced size, and verifies its digest ourselves. */
static int read_verified(int fd, const char *digest, uint64_t size, uint64_t max, char **ret,
                         char **ret_error) {
        _cleanup_free_ char *buf = NULL;
        char actual[DIGEST_STRING_MAX];
        DigestAlgorithm alg;
        struct stat st;
        ssize_t got;
        int r;

        if (digest_validate(digest, &alg) < 0)
                return json_set_error(ret_error, EBADMSG, "invalid digest '%.80s'", digest);
        if (size > max) {
                return json_set_error(ret_error, EFBIG,
                                      "'%s' is %" PRIu64 " bytes, more than the limit of %" PRIu64, digest,
                                      size, max);
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size != size) {
                return json_set_error(ret_error, EBADMSG,
                                      "the fetcher returned '%s' with %" PRIu64 " bytes, expected %" PRIu64,
                                      digest, (uint64_t) st.st_size, size);
        }
        buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        got = pread_full(fd, buf, size, 0);
        if (got < 0)
                return (int) got;
        if ((uint64_t) got != size) {
                return json_set_error(ret_error, EBADMSG, "'%s' is shorter than its %" PRIu64 " bytes",
                                      digest, size);
        }
        buf[size] = 0;
        r = digest_buffer(alg, buf, size, actual);
        if (r < 0)
                return r;
        /* SECURITY: the broker never trusts the fetcher's word for what the bytes are. */
        if (!digest_equal(actual, digest)) {
                return json_set_error(ret_error, EBADMSG,
                                      "digest mismatch: expected '%s', content hashes to '%s'", digest,
                                      actual);
        }
        *ret = TAKE_PTR(buf);
        return 0;
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
                if (p->unpack_only)
                        r = fetcher_call(p->manager, &j->slot, PULL_FETCH_TIMEOUT_USEC, on_fetch_reply, j,
                                         "OpenBlob", "s", j->digest);
                else
                        r = fetcher_call(p->manager, &j->slot, PULL_FETCH_TIMEOUT_USEC, on_fetch_reply, j,
                                         "FetchBlob", "sstst", p->name, j->digest, j->size, j->media_type,
                                         UINT64_C(0));
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
        if (transfer_is_running(p->transfer) && !p->resolve_slot && (p->n_platforms > 0 || p->unpack_only) &&
            p->running == 0 && g_queue_is_empty(&p->queue) && pull_platforms_complete(p))
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
        r = pull_check_config(pp->manifest, pp->manifest_digest, config, &msg);
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
        r = pull_check_manifest(manifest, pp->manifest_digest, &msg);
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
        /* The config may be known already (two platforms sharing it): apply it now. */
        return 0;
}

static int job_done(Pull *p, PullJob *j, int fd) {
        _cleanup_free_ char *data = NULL, *msg = NULL;
        struct stat st;
        int r;

        switch (j->kind) {
        case JOB_MANIFEST:
                r = read_verified(fd, j->digest, j->size, MANIFEST_SIZE_MAX, &data, &msg);
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
                r = read_verified(fd, j->digest, j->size, CONFIG_SIZE_MAX, &data, &msg);
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

                if (p->unpack_only && e && streq_ptr(e->name, BERTH_ERROR_NOT_FOUND))
                        pull_fail(p, "layer %s of %s is not in the content store; pull the image again",
                                  j->digest, t->reference);
                else
                        pull_fail_bus(p, e, p->unpack_only ? "OpenBlob" : "FetchBlob");
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

/* ---- the image record ------------------------------------------------------------------------------- */

static void add_strv(JsonBuilder *b, const char *key, char **l) {
        json_builder_set_member_name(b, key);
        if (!l) {
                json_builder_add_null_value(b);
                return;
        }
        json_builder_begin_array(b);
        STRV_FOREACH(s, l)
        json_builder_add_string_value(b, *s);
        json_builder_end_array(b);
}

static void add_str(JsonBuilder *b, const char *key, const char *v) {
        json_builder_set_member_name(b, key);
        if (v)
                json_builder_add_string_value(b, v);
        else
                json_builder_add_null_value(b);
}

static JsonNode *config_summary(const OciImageConfig *c) {
        g_autoptr(JsonBuilder) b = json_builder_new();

        json_builder_begin_object(b);
        add_strv(b, "env", c->env);
        add_strv(b, "entrypoint", c->entrypoint);
        add_strv(b, "cmd", c->cmd);
        add_str(b, "user", c->user);
        add_str(b, "working_dir", c->working_dir);
        json_builder_set_member_name(b, "labels");
        json_builder_begin_object(b);
        STRV_FOREACH(l, c->labels) {
                const char *eq = strchr(*l, '=');
                _cleanup_free_ char *key = eq ? strndup(*l, (size_t) (eq - *l)) : NULL;

                if (!key)
                        continue;
                json_builder_set_member_name(b, key);
                json_builder_add_string_value(b, eq + 1);
        }
        json_builder_end_object(b);
        add_strv(b, "exposed_ports", c->exposed_ports);
        add_str(b, "stop_signal", c->stop_signal);
        add_str(b, "created", c->created);
        json_builder_end_object(b);
        return json_builder_get_root(b);
}

static int build_platform(const PullPlatform *pp, ImagePlatform *ip) {
        const OciManifest *mf = pp->manifest;
        const OciImageConfig *c = pp->config;
        int r;

        ip->platform = platform_to_string(pp->index_platform.os ? &pp->index_platform : &c->platform);
        ip->manifest_digest = strdup(pp->manifest_digest);
        ip->manifest_media_type = strdup(pp->manifest_media_type);
        ip->manifest_size = pp->manifest_size;
        ip->config_digest = strdup(mf->config.digest);
        ip->config_media_type = strdup(mf->config.media_type);
        ip->config_size = mf->config.size;
        if (!ip->platform || !ip->manifest_digest || !ip->manifest_media_type || !ip->config_digest ||
            !ip->config_media_type)
                return -ENOMEM;
        ip->layers = calloc(mf->n_layers ?: 1, sizeof(ImageLayer));
        if (!ip->layers)
                return -ENOMEM;
        for (size_t l = 0; l < mf->n_layers; l++) {
                ImageLayer *il = &ip->layers[l];

                ip->n_layers++;
                il->digest = strdup(mf->layers[l].digest);
                il->media_type = strdup(mf->layers[l].media_type);
                il->size = mf->layers[l].size;
                il->diff_id = strdup(c->diff_ids[l]);
                if (!il->digest || !il->media_type || !il->diff_id)
                        return -ENOMEM;
        }
        r = oci_chain_ids(c->diff_ids, c->n_diff_ids, &ip->chain_ids);
        if (r < 0)
                return r;
        ip->config = config_summary(c);
        return 0;
}

static bool platform_unpacked(const Pull *p, const ImagePlatform *ip, size_t k) {
        const Image *old;

        if (unpack_platform_unpacked(p->unpack, k))
                return true;
        /* A --no-unpack pull of an image already unpacked keeps it so: the same chain ids recorded as
         * unpacked under this name are still committed (gc never removes what an image record uses). */
        old = image_store_get(p->manager->images, p->transfer->reference);
        for (size_t n = 0; old && n < old->n_platforms; n++)
                if (old->platforms[n].unpacked && streq_ptr(old->platforms[n].platform, ip->platform) &&
                    old->platforms[n].chain_ids && ip->chain_ids &&
                    g_strv_equal((const char *const *) old->platforms[n].chain_ids,
                                 (const char *const *) ip->chain_ids))
                        return true;
        return false;
}

static int build_image(Pull *p, Image **ret) {
        _cleanup_(image_freep) Image *i = NULL;
        const Image *old;
        struct timespec ts;
        size_t n_old_keep = 0;
        int r;

        old = image_store_get(p->manager->images, p->transfer->reference);
        /* Pulling another platform of the same target adds to the record; a new target replaces it. */
        if (old && !streq(old->target_digest, p->target_digest))
                old = NULL;

        i = calloc(1, sizeof(*i));
        if (!i)
                return -ENOMEM;
        i->platforms = calloc(p->n_platforms + (old ? old->n_platforms : 0), sizeof(ImagePlatform));
        if (!i->platforms)
                return -ENOMEM;
        i->name = strdup(p->transfer->reference);
        i->target_digest = strdup(p->target_digest);
        i->target_media_type = strdup(p->target_media_type);
        i->target_size = p->target_size;
        if (!i->name || !i->target_digest || !i->target_media_type)
                return -ENOMEM;
        clock_gettime(CLOCK_REALTIME, &ts);
        i->pulled_at_usec = (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;

        for (size_t k = 0; k < p->n_platforms; k++) {
                i->n_platforms++;
                r = build_platform(&p->platforms[k], &i->platforms[k]);
                if (r < 0)
                        return r;
                i->platforms[k].unpacked = platform_unpacked(p, &i->platforms[k], k);
        }
        if (old) {
                _cleanup_(image_freep) Image *copy = NULL;

                r = image_copy(old, NULL, &copy);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < copy->n_platforms; k++) {
                        bool dup = false;

                        for (size_t n = 0; n < p->n_platforms; n++)
                                dup = dup || streq(copy->platforms[k].platform, i->platforms[n].platform);
                        if (dup)
                                continue;
                        i->platforms[i->n_platforms++] = copy->platforms[k];
                        copy->platforms[k] = (ImagePlatform){};
                        n_old_keep++;
                }
        }
        log_debug("Image record for '%s': %zu new platform(s), %zu kept.", i->name, p->n_platforms,
                  n_old_keep);
        *ret = TAKE_PTR(i);
        return 0;
}

static int record_unpacked(Pull *p);

static void pull_complete(Pull *p) {
        _cleanup_(image_freep) Image *i = NULL;
        int r;

        if (p->unpack_only) {
                r = record_unpacked(p);
                if (r < 0) {
                        log_error_errno(r, "Failed to update the image record of '%s': %m",
                                        p->transfer->reference);
                        pull_fail(p, "Failed to save the image record: %s", strerror(-r));
                        return;
                }
                log_info("Unpacked '%s' (%s), transfer %" PRIu32 ".", p->transfer->reference,
                         p->unpack_platform, p->transfer->id);
                transfer_finish(p->transfer, TRANSFER_DONE, "");
                return;
        }

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
                pull_fail_bus(p, sd_bus_message_get_error(m), "Resolve");
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
        r = read_verified(fd, digest, size, MANIFEST_SIZE_MAX, &data, &msg);
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
                if (!transfer_is_running(t) || !p || !streq_ptr(p->fetcher, sender) ||
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

/* ---- shared with archive imports (broker-archive.c) -------------------------------------------------- */

/* An import records images exactly as a pull does: the same verification, the same checks, the same
 * record. The checks are the pull's own (platform_manifest_done/platform_config_done call them too). */

int pull_read_verified(int fd, const char *digest, uint64_t size, uint64_t max, char **ret,
                       char **ret_error) {
        return read_verified(fd, digest, size, max, ret, ret_error);
}

int pull_check_manifest(const OciManifest *mf, const char *digest, char **ret_error) {
        if (mf->n_layers > LAYERS_MAX)
                return json_set_error(ret_error, E2BIG,
                                      "Manifest '%s' has %zu layers, more than the limit of %u", digest,
                                      mf->n_layers, LAYERS_MAX);
        if (media_type_kind(mf->config.media_type) != MEDIA_KIND_CONFIG)
                return json_set_error(ret_error, EMEDIUMTYPE,
                                      "Unsupported config media type '%s' in '%s' (not a container image?)",
                                      mf->config.media_type, digest);
        if (mf->config.size > CONFIG_SIZE_MAX)
                return json_set_error(ret_error, EFBIG,
                                      "Config '%s' is %" PRIu64 " bytes, more than the limit of %u",
                                      mf->config.digest, mf->config.size, CONFIG_SIZE_MAX);
        return 0;
}

int pull_check_config(const OciManifest *mf, const char *digest, const OciImageConfig *c, char **ret_error) {
        if (c->n_diff_ids != mf->n_layers)
                return json_set_error(
                        ret_error, EBADMSG,
                        "Image config '%s' lists %zu layer diff_ids but the manifest has %zu layers",
                        mf->config.digest, c->n_diff_ids, mf->n_layers);
        for (size_t l = 0; l < mf->n_layers; l++) {
                const Descriptor *d = &mf->layers[l];

                if (media_type_kind(d->media_type) != MEDIA_KIND_LAYER)
                        return json_set_error(ret_error, EMEDIUMTYPE,
                                              "Unsupported layer media type '%s' in '%s'", d->media_type,
                                              digest);
                if (d->size > BLOB_SIZE_MAX)
                        return json_set_error(ret_error, EFBIG,
                                              "Layer '%s' claims %" PRIu64 " bytes, more than the limit",
                                              d->digest, d->size);
        }
        return 0;
}

int pull_build_image_record(Manager *m, const char *name, const char *target_digest,
                            const char *target_media_type, uint64_t target_size, const char *manifest_digest,
                            const char *manifest_media_type, uint64_t manifest_size,
                            const Platform *index_platform, OciManifest *manifest, OciImageConfig *config,
                            Image **ret) {
        /* A stand-in pull holding borrowed pieces (nothing here is freed): build_image() only reads. */
        Transfer t = { .manager = m, .reference = (char *) name };
        PullPlatform pp = {
                .manifest_digest = (char *) manifest_digest,
                .manifest_media_type = (char *) manifest_media_type,
                .manifest_size = manifest_size,
                .index_platform = index_platform ? *index_platform : (Platform){},
                .manifest = manifest,
                .config = config,
        };
        Pull p = {
                .manager = m,
                .transfer = &t,
                .target_digest = (char *) target_digest,
                .target_media_type = (char *) target_media_type,
                .target_size = target_size,
                .platforms = &pp,
                .n_platforms = 1,
        };

        return build_image(&p, ret);
}

/* ---- UnpackImage: the unpack half of a pull, for an image already in the content store ------------------
 */

/* Marks the unpacked platform in the current record, when the record still names the same target and
 * chain (it may have been removed or re-pulled meanwhile: then there is nothing to mark). */
static int record_unpacked(Pull *p) {
        _cleanup_(image_freep) Image *copy = NULL;
        const Image *old;
        int r;

        old = image_store_get(p->manager->images, p->transfer->reference);
        if (!old || !streq_ptr(old->target_digest, p->target_digest)) {
                log_info("Image '%s' changed while it was being unpacked; its record is left as is.",
                         p->transfer->reference);
                return 0;
        }
        r = image_copy(old, NULL, &copy);
        if (r < 0)
                return r;
        for (size_t k = 0; k < copy->n_platforms; k++) {
                ImagePlatform *ip = &copy->platforms[k];

                if (!streq_ptr(ip->platform, p->unpack_platform) || !ip->chain_ids ||
                    !g_strv_equal((const char *const *) ip->chain_ids,
                                  (const char *const *) p->unpack_chain_ids))
                        continue;
                if (ip->unpacked)
                        return 0;
                ip->unpacked = true;
                return image_store_put(p->manager->images, &copy);
        }
        return 0;
}

int pull_start_unpack(Transfer *t, const Image *img, const ImagePlatform *ip) {
        _cleanup_free_ char **digests = NULL, **media_types = NULL, **diff_ids = NULL;
        Pull *p;
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

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->manager = t->manager;
        p->transfer = t;
        p->parallel = FETCH_PARALLEL_DEFAULT;
        p->unpack_only = true;
        p->jobs = g_ptr_array_new_with_free_func(pull_job_free);
        g_queue_init(&p->queue);
        p->target_digest = strdup(img->target_digest);
        p->unpack_platform = strdup(ip->platform);
        p->unpack_chain_ids = g_strdupv(ip->chain_ids);
        if (!p->target_digest || !p->unpack_platform || !p->unpack_chain_ids) {
                pull_free(p);
                return -ENOMEM;
        }

        r = pull_new_unpack(p);
        if (r >= 0)
                r = unpack_add_platform(p->unpack, 0, ip->chain_ids, digests, diff_ids, media_types,
                                        ip->n_layers);
        for (size_t l = 0; r >= 0 && l < ip->n_layers; l++)
                r = pull_add_job(p, JOB_LAYER, ip->layers[l].digest, ip->layers[l].media_type,
                                 ip->layers[l].size);
        /* The blobs are here already: their rows start as "exists", as in a pull that found them. */
        for (size_t l = 0; r >= 0 && l < ip->n_layers; l++) {
                TransferBlob *b = transfer_find_blob(t, ip->layers[l].digest);

                if (b)
                        transfer_blob_update(t, b, "exists", b->total, b->total);
        }
        if (r < 0) {
                pull_free(p);
                return r;
        }
        transfer_set_image_digest(t, img->target_digest);
        transfer_set_state(t, TRANSFER_UNPACKING);
        transfer_set_owner(t, &pull_owner_ops, p);
        pull_dispatch(p); /* OpenBlob calls, answered from the fetcher's store */
        return 0;
}
