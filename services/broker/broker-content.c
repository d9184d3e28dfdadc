/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <inttypes.h>
#include <stdio.h>

#include "berth-limits.h"
#include "broker.h"
#include "bus-names.h"
#include "bus-error.h"
#include "bus-util.h"
#include "digest.h"
#include "fetcher-client.h"
#include "image-store.h"
#include "log.h"
#include "pull.h"
#include "transfer.h"

/* The content half of org.berth.Broker1.Manager: the fetcher owns the blobs, the broker knows which
 * images reference them, so listing and garbage collection are the broker's questions and the
 * fetcher's actions. And registry credentials, which the fetcher keeps. */

#define PRUNE_FLAG_ALL_INGESTS (UINT64_C(1) << 0)
#define PRUNE_FLAGS_ALL PRUNE_FLAG_ALL_INGESTS
#define INGEST_MIN_AGE_USEC (3600ULL * 1000000ULL)
/* Listing, removing and cleaning walk the whole store: more than a quick call. */
#define CONTENT_CALL_TIMEOUT_USEC (BUS_INTERNAL_TIMEOUT_USEC * 4)

typedef struct ContentCall {
        Manager *manager;
        sd_bus_message *request;
        uint64_t flags;
        uint64_t freed;
        uint32_t removed;
        unsigned pending;
        bool failed;
} ContentCall;

static ContentCall *content_call_new(Manager *manager, sd_bus_message *request) {
        ContentCall *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->manager = manager;
        c->request = sd_bus_message_ref(request);
        return c;
}

static void content_call_free(ContentCall *c) {
        if (!c)
                return;
        sd_bus_message_unref(c->request);
        free(c);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(ContentCall *, content_call_free);

/* For a method handler: starts the call, or frees c and fails the method with ServiceUnavailable. */
static int call_fetcher_or_fail(ContentCall *c, sd_bus_error *error, sd_bus_message_handler_t callback,
                                const char *member, const char *types, ...) {
        va_list ap;
        int r;

        va_start(ap, types);
        r = internal_callv(c->manager, &internal_fetcher, NULL, CONTENT_CALL_TIMEOUT_USEC, callback, c,
                           member, types, ap);
        va_end(ap);
        if (r < 0) {
                content_call_free(c);
                return internal_error_unreachable(&internal_fetcher, r, error);
        }
        return 0;
}

/* ---- ListContent ----------------------------------------------------------------------------------- */

static int on_list_blobs_for_list(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(content_call_freep) ContentCall *c = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(GArray) blobs = g_array_new(false, false, sizeof(FetcherBlob));
        _cleanup_free_ Image **images = NULL;
        size_t n_images = 0;
        int r;

        if (sd_bus_message_is_method_error(m, NULL)) {
                (void) bus_reply_internal_error(c->request, sd_bus_message_get_error(m),
                                                "Listing the content store");
                return 0;
        }
        r = fetcher_read_blob_list(m, blobs);
        if (r >= 0)
                r = image_store_list(c->manager->images, &images, &n_images);
        if (r >= 0)
                r = sd_bus_message_new_method_return(c->request, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sttas)");
        for (guint i = 0; r >= 0 && i < blobs->len; i++) {
                FetcherBlob *b = &g_array_index(blobs, FetcherBlob, i);

                r = sd_bus_message_open_container(reply, 'r', "sttas");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "stt", b->digest, b->size, b->mtime);
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'a', "s");
                for (size_t k = 0; r >= 0 && k < n_images; k++)
                        if (image_references_blob(images[k], b->digest))
                                r = sd_bus_message_append(reply, "s", images[k]->name);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0) {
                log_error_errno(r, "Failed to answer ListContent: %m");
                (void) sd_bus_reply_method_errorf(c->request, BERTH_ERROR_IO, "Failed to list content: %s",
                                                  strerror(-r));
        }
        return 0;
}

static int list_content_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ContentCall *c = content_call_new(userdata, m);
        int r;

        if (!c)
                return -ENOMEM;
        r = call_fetcher_or_fail(c, error, on_list_blobs_for_list, "ListBlobs", NULL);
        if (r < 0)
                return r;
        return 1;
}

int method_list_content(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return broker_authorize(m, NULL, list_content_authorized, userdata, error);
}

/* ---- PruneContent ---------------------------------------------------------------------------------- */

static void on_snapshot_gc_done(void *userdata, int r, uint64_t freed, unsigned removed, const char *error) {
        ContentCall *c = userdata;

        if (r < 0)
                (void) sd_bus_reply_method_errorf(c->request, BERTH_ERROR_IO,
                                                  "Removing unused snapshots: %s", strna(error));
        else {
                c->freed += freed;
                (void) sd_bus_reply_method_return(c->request, "tu", c->freed, c->removed);
        }
        content_call_free(c);
}

static int on_clean_ingests(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        ContentCall *c = userdata;
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
        content_call_free(c);
        return 0;
}

static void prune_next(ContentCall *c) {
        int r;

        r = fetcher_call(c->manager, NULL, CONTENT_CALL_TIMEOUT_USEC, on_clean_ingests, c, "CleanIngests",
                         "t", (c->flags & PRUNE_FLAG_ALL_INGESTS) ? UINT64_C(0) : INGEST_MIN_AGE_USEC);
        if (r < 0) {
                (void) internal_reply_unreachable(c->request, &internal_fetcher, r);
                content_call_free(c);
        }
}

static int on_remove_blobs(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        ContentCall *c = userdata;
        uint64_t freed = 0;

        if (sd_bus_message_is_method_error(m, NULL)) {
                if (!c->failed)
                        (void) bus_reply_internal_error(c->request, sd_bus_message_get_error(m),
                                                        "Removing blobs");
                c->failed = true;
        } else if (sd_bus_message_read(m, "t", &freed) >= 0)
                c->freed += freed;

        if (--c->pending > 0)
                return 0;
        if (c->failed)
                content_call_free(c);
        else
                prune_next(c);
        return 0;
}

static int on_list_blobs_for_prune(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        ContentCall *c = userdata;
        g_autoptr(GArray) blobs = g_array_new(false, false, sizeof(FetcherBlob));
        g_autoptr(GPtrArray) doomed = g_ptr_array_new();
        _cleanup_free_ Image **images = NULL;
        size_t n_images = 0;
        int r;

        if (sd_bus_message_is_method_error(m, NULL)) {
                (void) bus_reply_internal_error(c->request, sd_bus_message_get_error(m),
                                                "Listing the content store");
                content_call_free(c);
                return 0;
        }
        r = fetcher_read_blob_list(m, blobs);
        if (r >= 0)
                r = image_store_list(c->manager->images, &images, &n_images);
        if (r < 0) {
                (void) sd_bus_reply_method_errorf(c->request, BERTH_ERROR_IO, "Failed to list content: %s",
                                                  strerror(-r));
                content_call_free(c);
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
        if (--c->pending > 0)
                return 0;
        if (c->failed)
                content_call_free(c);
        else
                prune_next(c);
        return 0;
}

static int prune_content_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ContentCall *c;
        uint64_t flags;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "t", &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, PRUNE_FLAGS_ALL, error);
        if (r < 0)
                return r;
        c = content_call_new(userdata, m);
        if (!c)
                return -ENOMEM;
        c->flags = flags;
        r = call_fetcher_or_fail(c, error, on_list_blobs_for_prune, "ListBlobs", NULL);
        if (r < 0)
                return r;
        return 1;
}

int method_prune_content(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return broker_authorize(m, NULL, prune_content_authorized, userdata, error);
}

/* ---- Login / Logout -------------------------------------------------------------------------------- */

static int on_forwarded_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        ContentCall *c = userdata;

        if (sd_bus_message_is_method_error(m, NULL))
                (void) bus_reply_internal_error(c->request, sd_bus_message_get_error(m), "Registry login");
        else
                (void) sd_bus_reply_method_return(c->request, "");
        content_call_free(c);
        return 0;
}

static int check_registry(const char *registry, sd_bus_error *error) {
        if (isempty(registry) || strlen(registry) > REGISTRY_NAME_MAX || strchr(registry, '/'))
                return sd_bus_error_setf(
                        error, BERTH_ERROR_INVALID_REFERENCE,
                        "Invalid registry name '%.255s': expected a host, optionally with :port.", registry);
        return 0;
}

static int login_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *registry, *user, *secret;
        ContentCall *c;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "sss", &registry, &user, &secret);
        if (r < 0)
                return r;
        r = check_registry(registry, error);
        if (r < 0)
                return r;
        if (isempty(user) || strlen(user) > LOGIN_FIELD_MAX || isempty(secret) ||
            strlen(secret) > LOGIN_FIELD_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Username and secret must be 1..%u bytes.", LOGIN_FIELD_MAX);
        c = content_call_new(userdata, m);
        if (!c)
                return -ENOMEM;
        /* The fetcher checks the grammar of each field again and verifies them against the registry. */
        r = call_fetcher_or_fail(c, error, on_forwarded_reply, "Login", "sss", registry, user, secret);
        if (r < 0)
                return r;
        log_info("Login to '%s' as '%s' forwarded to the fetcher.", registry, user);
        return 1;
}

int method_login(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *registry, *user, *secret;
        int r;

        r = sd_bus_message_read(m, "sss", &registry, &user, &secret);
        if (r < 0)
                return r;
        /* Never the secret in details: polkit agents show them. */
        const char *details[] = { "registry", strlen(registry) <= REGISTRY_NAME_MAX ? registry : "", NULL };
        return broker_authorize(m, details, login_authorized, userdata, error);
}

static int logout_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *registry;
        ContentCall *c;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "s", &registry);
        if (r < 0)
                return r;
        r = check_registry(registry, error);
        if (r < 0)
                return r;
        c = content_call_new(userdata, m);
        if (!c)
                return -ENOMEM;
        r = call_fetcher_or_fail(c, error, on_forwarded_reply, "Logout", "s", registry);
        if (r < 0)
                return r;
        return 1;
}

int method_logout(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *registry;
        int r;

        r = sd_bus_message_read(m, "s", &registry);
        if (r < 0)
                return r;
        const char *details[] = { "registry", strlen(registry) <= REGISTRY_NAME_MAX ? registry : "", NULL };
        return broker_authorize(m, details, logout_authorized, userdata, error);
}
