/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <inttypes.h>
#include <stdio.h>

#include "berth-limits.h"
#include "broker.h"
#include "bus-names.h"
#include "bus-util.h"
#include "image-store.h"
#include "json-util.h"
#include "log.h"
#include "pull.h"
#include "transfer.h"

/* The image half of org.berth.Broker1.Manager. Each handler: authorise (details carry the arguments
 * polkit agents and rules may want), read arguments, validate each, enforce limits, act, reply. */

/* Parses a user's reference and returns its normalised spelling, or sets InvalidReference saying
 * what is wrong. */
static int normalise_reference(const char *s, ImageReference **ret_ref, char **ret, sd_bus_error *error) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        _cleanup_free_ char *msg = NULL;
        char *n;
        int r;

        if (strlen(s) > REFERENCE_LENGTH_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_REFERENCE,
                                         "Reference is longer than %u bytes.", REFERENCE_LENGTH_MAX);
        r = image_reference_parse(s, &ref, &msg);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_REFERENCE,
                                         "Invalid reference '%.200s': %s", s, msg ?: "malformed");
        n = image_reference_to_string(ref);
        if (!n)
                return -ENOMEM;
        *ret = n;
        if (ret_ref)
                *ret_ref = TAKE_PTR(ref);
        return 0;
}

static const char *detail(const char *s) {
        /* polkit details are for humans and rules; an oversized argument is refused later anyway. */
        return strlen(s) <= BUS_STRING_MAX ? s : "";
}

/* The global and per-user limits on running transfers (pulls and unpacks alike). */
static int check_transfer_limits(Manager *manager, uid_t uid, sd_bus_error *error) {
        if (transfer_count_running(manager, true, 0) >= TRANSFERS_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "Too many transfers running (limit %u).",
                                         TRANSFERS_MAX);
        if (transfer_count_running(manager, false, uid) >= TRANSFERS_PER_USER_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT,
                                         "Too many transfers of yours running (limit %u).",
                                         TRANSFERS_PER_USER_MAX);
        return 0;
}

/* ---- PullImage ------------------------------------------------------------------------------------- */

static int pull_image_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        _cleanup_free_ char *reference = NULL, *platform = NULL, *msg = NULL;
        _cleanup_(platform_done) Platform wanted = {};
        Manager *manager = userdata;
        const char *ref_arg, *platform_arg;
        Transfer *t;
        uint64_t flags;
        uid_t uid;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "sst", &ref_arg, &platform_arg, &flags);
        if (r < 0)
                return r;

        r = bus_check_flags(flags, PULL_FLAGS_ALL, error);
        if (r < 0)
                return r;
        r = normalise_reference(ref_arg, &ref, &reference, error);
        if (r < 0)
                return r;
        if (!isempty(platform_arg)) {
                if (flags & PULL_FLAG_ALL_PLATFORMS)
                        return sd_bus_error_setf(
                                error, SD_BUS_ERROR_INVALID_ARGS,
                                "A platform and all platforms cannot be asked for at once.");
                if (strlen(platform_arg) > PLATFORM_STRING_MAX)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Platform string too long.");
                r = platform_parse(platform_arg, &wanted, &msg);
                if (r < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Invalid platform '%s': %s", platform_arg,
                                                 msg ?: "malformed");
                platform = platform_to_string(&wanted);
        } else
                platform = strdup("");
        if (!platform)
                return -ENOMEM;

        /* The same pull already running: share it. */
        t = transfer_find_running(manager, reference, platform, flags);
        if (t)
                return sd_bus_reply_method_return(m, "o", t->path);

        r = bus_message_sender_uid(m, &uid);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Cannot establish the caller's identity.");
        r = check_transfer_limits(manager, uid, error);
        if (r < 0)
                return r;

        r = transfer_new(manager, uid, reference, platform, flags, &t);
        if (r < 0)
                return log_error_errno(r, "Failed to create a transfer for '%s': %m", reference);
        /* pull_start() takes wanted over (and leaves it empty). */
        r = pull_start(t, &ref, isempty(platform_arg) ? NULL : &wanted);
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
        const char *reference, *platform;
        uint64_t flags;
        int r;

        r = sd_bus_message_read(m, "sst", &reference, &platform, &flags);
        if (r < 0)
                return r;
        const char *details[] = { "reference", detail(reference), "platform", detail(platform), NULL };
        return broker_authorize(m, details, pull_image_authorized, userdata, error);
}

/* ---- UnpackImage ----------------------------------------------------------------------------------- */

/* The platform of a record this machine runs: the one matching the default platform, or the only one
 * (a single-manifest image is taken whatever its platform, as pulls do); with `wanted`, that one. */
const ImagePlatform *broker_image_platform(const Image *i, const Platform *wanted) {
        _cleanup_(platform_done) Platform def = {};

        if (!wanted) {
                if (platform_default(&def) < 0)
                        return i->n_platforms == 1 ? &i->platforms[0] : NULL;
                wanted = &def;
        }
        for (size_t k = 0; k < i->n_platforms; k++) {
                _cleanup_(platform_done) Platform p = {};

                if (platform_parse(i->platforms[k].platform, &p, NULL) >= 0 && platform_matches(wanted, &p))
                        return &i->platforms[k];
        }
        return wanted == &def && i->n_platforms == 1 ? &i->platforms[0] : NULL;
}

int broker_start_unpack(Manager *manager, uid_t uid, const char *reference_arg, const char *platform_arg,
                        const char **ret_path, sd_bus_error *error) {
        _cleanup_free_ char *reference = NULL, *msg = NULL;
        _cleanup_(platform_done) Platform wanted = {};
        const ImagePlatform *ip;
        const Image *img;
        Transfer *t;
        int r;

        r = normalise_reference(reference_arg, NULL, &reference, error);
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
                *ret_path = t->path;
                return 0;
        }
        r = check_transfer_limits(manager, uid, error);
        if (r < 0)
                return r;

        r = transfer_new(manager, uid, reference, ip->platform, TRANSFER_FLAG_UNPACK_ONLY, &t);
        if (r < 0)
                return log_error_errno(r, "Failed to create a transfer for '%s': %m", reference);
        r = pull_start_unpack(t, img, ip);
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

static int unpack_image_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *manager = userdata;
        const char *ref_arg, *platform_arg, *path = NULL;
        uint64_t flags;
        uid_t uid;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "sst", &ref_arg, &platform_arg, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        r = bus_message_sender_uid(m, &uid);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Cannot establish the caller's identity.");
        r = broker_start_unpack(manager, uid, ref_arg, platform_arg, &path, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "o", path);
}

int method_unpack_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *reference, *platform;
        uint64_t flags;
        int r;

        r = sd_bus_message_read(m, "sst", &reference, &platform, &flags);
        if (r < 0)
                return r;
        const char *details[] = { "reference", detail(reference), "platform", detail(platform), NULL };
        return broker_authorize(m, details, unpack_image_authorized, userdata, error);
}

/* ---- ListTransfers --------------------------------------------------------------------------------- */

static int compare_transfers(const void *a, const void *b) {
        const Transfer *x = *(Transfer *const *) a, *y = *(Transfer *const *) b;
        return x->id < y->id ? -1 : x->id > y->id;
}

static int list_transfers_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ Transfer **l = NULL;
        Manager *manager = userdata;
        GHashTableIter iter;
        gpointer value;
        size_t n = 0;
        int r;

        l = calloc(g_hash_table_size(manager->transfers) + 1, sizeof(Transfer *));
        if (!l)
                return -ENOMEM;
        g_hash_table_iter_init(&iter, manager->transfers);
        while (g_hash_table_iter_next(&iter, NULL, &value))
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
        return broker_authorize(m, NULL, list_transfers_authorized, userdata, error);
}

/* ---- ListImages ------------------------------------------------------------------------------------ */

static int list_images_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ Image **l = NULL;
        Manager *manager = userdata;
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
        return broker_authorize(m, NULL, list_images_authorized, userdata, error);
}

/* ---- InspectImage ---------------------------------------------------------------------------------- */

int broker_lookup_image(Manager *manager, const char *reference, Image **ret, sd_bus_error *error) {
        _cleanup_free_ char *name = NULL;
        Image *i;
        int r;

        r = normalise_reference(reference, NULL, &name, error);
        if (r < 0)
                return r;
        i = image_store_get(manager->images, name);
        if (!i)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No image '%s'.", name);
        *ret = i;
        return 0;
}

static int inspect_image_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_json_node_ JsonNode *node = NULL;
        _cleanup_free_ char *text = NULL;
        const char *reference;
        Image *i;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "s", &reference);
        if (r < 0)
                return r;
        r = broker_lookup_image(userdata, reference, &i, error);
        if (r < 0)
                return r;
        node = image_to_json(i);
        text = json_to_string_compact(node);
        if (!text)
                return -ENOMEM;
        return sd_bus_reply_method_return(m, "s", text);
}

int method_inspect_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *reference;
        int r;

        r = sd_bus_message_read(m, "s", &reference);
        if (r < 0)
                return r;
        const char *details[] = { "reference", detail(reference), NULL };
        return broker_authorize(m, details, inspect_image_authorized, userdata, error);
}

/* ---- TagImage -------------------------------------------------------------------------------------- */

static int tag_image_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(image_freep) Image *copy = NULL;
        _cleanup_free_ char *target_name = NULL;
        Manager *manager = userdata;
        const char *source, *target;
        Image *i, *existing;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "ss", &source, &target);
        if (r < 0)
                return r;
        r = broker_lookup_image(manager, source, &i, error);
        if (r < 0)
                return r;
        r = normalise_reference(target, NULL, &target_name, error);
        if (r < 0)
                return r;

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
        return sd_bus_reply_method_return(m, "");
}

int method_tag_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *source, *target;
        int r;

        r = sd_bus_message_read(m, "ss", &source, &target);
        if (r < 0)
                return r;
        const char *details[] = { "source", detail(source), "target", detail(target), NULL };
        return broker_authorize(m, details, tag_image_authorized, userdata, error);
}

/* ---- RemoveImage ----------------------------------------------------------------------------------- */

static int remove_image_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *name = NULL;
        Manager *manager = userdata;
        const char *reference;
        uint64_t flags;
        Image *i;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "st", &reference, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        r = broker_lookup_image(manager, reference, &i, error);
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
        return sd_bus_reply_method_return(m, "");
}

int method_remove_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *reference;
        uint64_t flags;
        int r;

        r = sd_bus_message_read(m, "st", &reference, &flags);
        if (r < 0)
                return r;
        const char *details[] = { "reference", detail(reference), NULL };
        return broker_authorize(m, details, remove_image_authorized, userdata, error);
}
