/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <inttypes.h>
#include <stdio.h>

#include "berth-limits.h"
#include "broker.h"
#include "events.h"
#include "bus-names.h"
#include "bus-util.h"
#include "image-store.h"
#include "json-util.h"
#include "log.h"
#include "pull.h"
#include "transfer.h"

/* The image half of org.berth.Broker1.Manager. Each handler: authorise (details carry the arguments
 * polkit agents and rules may want), read arguments, validate each, enforce limits, act, reply. */

/* ---- PullImage ------------------------------------------------------------------------------------- */

static int pull_image_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        ReferenceArgs *a = args;
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        _cleanup_free_ char *reference = NULL, *platform = NULL, *msg = NULL;
        _cleanup_(platform_done) Platform wanted = {};
        Transfer *t;
        uid_t uid;
        int r;

        r = bus_check_flags(a->flags, PULL_FLAGS_ALL, error);
        if (r < 0)
                return r;
        r = broker_normalise_reference(a->reference, &ref, &reference, error);
        if (r < 0)
                return r;
        if (!isempty(a->platform)) {
                if (a->flags & PULL_FLAG_ALL_PLATFORMS)
                        return sd_bus_error_setf(
                                error, SD_BUS_ERROR_INVALID_ARGS,
                                "A platform and all platforms cannot be asked for at once.");
                if (strlen(a->platform) > PLATFORM_STRING_MAX)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Platform string too long.");
                r = platform_parse(a->platform, &wanted, &msg);
                if (r < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Invalid platform '%s': %s", a->platform,
                                                 msg ?: "malformed");
                platform = platform_to_string(&wanted);
        } else
                platform = strdup("");
        if (!platform)
                return -ENOMEM;

        /* The same pull already running: share it. */
        t = transfer_find_running(manager, reference, platform, a->flags);
        if (t) {
                /* SECURITY: joining makes the caller a participant: it may read the transfer and gets
                 * its signals (transfer-access.c). It asked for the very same pull, polkit said yes. */
                r = transfer_add_watcher(t, m);
                if (r < 0)
                        return r;
                return sd_bus_reply_method_return(m, "o", t->path);
        }

        r = bus_message_sender_uid(m, &uid);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Cannot establish the caller's identity.");
        r = broker_check_transfer_limits(manager, uid, error);
        if (r < 0)
                return r;

        r = transfer_new(manager, uid, reference, platform, a->flags, &t);
        if (r < 0)
                return log_error_errno(r, "Failed to create a transfer for '%s': %m", reference);
        /* Before anything starts: a signal emitted at once must reach the caller. */
        r = transfer_add_watcher(t, m);
        if (r < 0) {
                transfer_free(t);
                return r;
        }
        /* pull_start() takes wanted over (and leaves it empty). */
        r = pull_start(t, &ref, isempty(a->platform) ? NULL : &wanted);
        if (r < 0) {
                log_error_errno(r, "Failed to start pulling '%s': %m", reference);
                transfer_free(t);
                return sd_bus_error_setf(error, BERTH_ERROR_SERVICE_UNAVAILABLE,
                                         "Cannot reach the berth fetcher: %s", strerror(-r));
        }
        log_info("Transfer %" PRIu32 ": pulling '%s'%s%s for uid %u.", t->id, reference,
                 isempty(platform) ? "" : " for ", platform, (unsigned) uid);
        return sd_bus_reply_method_return(m, "o", t->path);
}

int method_pull_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return broker_authorize_reference(m, pull_image_authorized, userdata, error);
}

/* ---- ListTransfers --------------------------------------------------------------------------------- */

static int compare_transfers(const void *a, const void *b) {
        const Transfer *x = *(Transfer *const *) a, *y = *(Transfer *const *) b;
        return x->id < y->id ? -1 : x->id > y->id;
}

static int list_transfers_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ Transfer **l = NULL;
        GHashTableIter iter;
        gpointer value;
        size_t n = 0;
        uid_t uid;
        int r;

        l = calloc(g_hash_table_size(manager->transfers) + 1, sizeof(Transfer *));
        if (!l)
                return -ENOMEM;
        g_hash_table_iter_init(&iter, manager->transfers);
        r = bus_message_sender_uid(m, &uid);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Cannot establish the caller's identity.");
        /* SECURITY: the caller's own transfers (those it started or joined); root's list is all. */
        while (g_hash_table_iter_next(&iter, NULL, &value))
                if (transfer_visible_to(value, uid))
                        l[n++] = value;
        qsort(l, n, sizeof(Transfer *), compare_transfers);

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(oss)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                r = sd_bus_message_append(reply, "(oss)", l[i]->path, l[i]->reference,
                                          transfer_state_to_string(l[i]->state));
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int method_list_transfers(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return broker_authorize(m, NULL, list_transfers_authorized, userdata, NULL, 0, NULL, error);
}

/* ---- ListImages ------------------------------------------------------------------------------------ */

static int list_images_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ Image **l = NULL;
        size_t n = 0;
        int r;

        r = image_store_list(manager->images, &l, &n);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sssts)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *platforms = image_platforms_string(l[i]);

                if (!platforms)
                        return -ENOMEM;
                r = sd_bus_message_append(reply, "(sssts)", l[i]->name, l[i]->target_digest,
                                          l[i]->target_media_type, image_size(l[i]), platforms);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int method_list_images(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return broker_authorize(m, NULL, list_images_authorized, userdata, NULL, 0, NULL, error);
}

/* ---- InspectImage ---------------------------------------------------------------------------------- */

typedef struct InspectImageArgs {
        const char *reference;
} InspectImageArgs;

static int inspect_image_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        InspectImageArgs *a = args;
        _cleanup_json_node_ JsonNode *node = NULL;
        _cleanup_free_ char *text = NULL;
        Image *i;
        int r;

        r = broker_lookup_image(manager, a->reference, &i, error);
        if (r < 0)
                return r;
        node = image_to_json(i);
        text = json_to_string_compact(node);
        if (!text)
                return -ENOMEM;
        return sd_bus_reply_method_return(m, "s", text);
}

int method_inspect_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        InspectImageArgs a = {};
        int r;

        r = sd_bus_message_read(m, "s", &a.reference);
        if (r < 0)
                return r;
        const char *details[] = { "reference", broker_detail(a.reference), NULL };
        return broker_authorize(m, details, inspect_image_authorized, userdata, &a, sizeof(a), NULL, error);
}

/* ---- TagImage -------------------------------------------------------------------------------------- */

typedef struct TagImageArgs {
        const char *source;
        const char *target;
} TagImageArgs;

static int tag_image_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        TagImageArgs *a = args;
        _cleanup_(image_freep) Image *copy = NULL;
        _cleanup_(image_reference_freep) ImageReference *target_ref = NULL;
        _cleanup_free_ char *target_name = NULL;
        Image *i, *existing;
        int r;

        r = broker_lookup_image(manager, a->source, &i, error);
        if (r < 0)
                return r;
        r = broker_normalise_reference(a->target, &target_ref, &target_name, error);
        if (r < 0)
                return r;
        /* SECURITY: a digest-pinned name must be the truth about its content: only the source's own
         * digest, whoever asks (broker_tag_image_action() let members create such names for that). */
        if (target_ref->digest && !streq(target_ref->digest, i->target_digest))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "'%s' names digest %s, but '%s' is %s.", target_name,
                                         target_ref->digest, i->name, i->target_digest);

        existing = image_store_get(manager->images, target_name);
        if (existing) {
                if (streq(existing->target_digest, i->target_digest))
                        return sd_bus_reply_method_return(m, "");
                return sd_bus_error_setf(error, BERTH_ERROR_EXISTS, "Image '%s' exists and points to %s.",
                                         target_name, existing->target_digest);
        }
        if (image_store_count(manager->images) >= IMAGES_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "Too many images (limit %u).",
                                         IMAGES_MAX);

        r = image_copy(i, target_name, &copy);
        if (r < 0)
                return r;
        r = image_store_put(manager->images, &copy);
        if (r < 0) {
                log_error_errno(r, "Failed to write the image record of '%s': %m", target_name);
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Failed to save '%s': %s", target_name,
                                         strerror(-r));
        }
        log_info("Tagged '%s' as '%s'.", i->name, target_name);
        broker_event_emit(manager, EVENT_TYPE_IMAGE, "tag", i->target_digest, target_name, 0,
                          (const char *const[]){ "source", i->name, NULL });
        return sd_bus_reply_method_return(m, "");
}

int method_tag_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(image_reference_freep) ImageReference *target = NULL;
        _cleanup_free_ char *target_name = NULL;
        TagImageArgs a = {};
        int r;

        r = sd_bus_message_read(m, "ss", &a.source, &a.target);
        if (r < 0)
                return r;
        /* The action depends on where the new name lives, so the target is parsed before authorising;
         * the continuation parses it again and does all other checks. */
        r = broker_normalise_reference(a.target, &target, &target_name, error);
        if (r < 0)
                return r;
        const char *details[] = { "source", broker_detail(a.source), "target", broker_detail(a.target),
                                  NULL };
        return broker_authorize_action(m, broker_tag_image_action(target), details, tag_image_authorized,
                                       userdata, &a, sizeof(a), NULL, error);
}

/* ---- RemoveImage ----------------------------------------------------------------------------------- */

typedef struct RemoveImageArgs {
        const char *reference;
        uint64_t flags;
} RemoveImageArgs;

static int remove_image_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        RemoveImageArgs *a = args;
        _cleanup_free_ char *name = NULL;
        Image *i;
        int r;

        r = bus_check_flags(a->flags, 0, error);
        if (r < 0)
                return r;
        r = broker_lookup_image(manager, a->reference, &i, error);
        if (r < 0)
                return r;
        name = strdup(i->name);
        if (!name)
                return -ENOMEM;
        r = image_store_remove(manager->images, name);
        if (r < 0) {
                log_error_errno(r, "Failed to remove the image record of '%s': %m", name);
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Failed to remove '%s': %s", name,
                                         strerror(-r));
        }
        log_info("Removed image '%s'.", name);
        broker_event_emit(manager, EVENT_TYPE_IMAGE, "delete", "", name, 0, NULL);
        return sd_bus_reply_method_return(m, "");
}

int method_remove_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        RemoveImageArgs a = {};
        int r;

        r = sd_bus_message_read(m, "st", &a.reference, &a.flags);
        if (r < 0)
                return r;
        const char *details[] = { "reference", broker_detail(a.reference), NULL };
        return broker_authorize(m, details, remove_image_authorized, userdata, &a, sizeof(a), NULL, error);
}
