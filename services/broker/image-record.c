/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <time.h>

#include "image-record.h"
#include "log.h"

/* The record a pull or an import writes for an image: what each platform consists of (manifest,
 * config, layers, chain ids), a summary of its config for InspectImage and containers, and whether it
 * is unpacked. */

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

static int build_platform(const RecordPlatform *rp, ImagePlatform *ip) {
        const OciManifest *mf = rp->manifest;
        const OciImageConfig *c = rp->config;
        int r;

        ip->platform = platform_to_string(rp->index_platform && rp->index_platform->os ? rp->index_platform
                                                                                       : &c->platform);
        ip->manifest_digest = strdup(rp->manifest_digest);
        ip->manifest_media_type = strdup(rp->manifest_media_type);
        ip->manifest_size = rp->manifest_size;
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

/* A platform the caller did not unpack just now may be unpacked already: a --no-unpack pull of an image
 * already unpacked keeps it so when the same chain ids are recorded as unpacked under this name (they
 * are still committed: gc never removes what an image record uses). */
static bool platform_unpacked_before(ImageStore *store, const char *name, const ImagePlatform *ip) {
        const Image *old = image_store_get(store, name);

        for (size_t n = 0; old && n < old->n_platforms; n++)
                if (old->platforms[n].unpacked && streq_ptr(old->platforms[n].platform, ip->platform) &&
                    old->platforms[n].chain_ids && ip->chain_ids &&
                    g_strv_equal((const char *const *) old->platforms[n].chain_ids,
                                 (const char *const *) ip->chain_ids))
                        return true;
        return false;
}

int image_record_build(ImageStore *store, const char *name, const char *target_digest,
                       const char *target_media_type, uint64_t target_size, const RecordPlatform *platforms,
                       size_t n_platforms, Image **ret) {
        _cleanup_(image_freep) Image *i = NULL;
        const Image *old;
        struct timespec ts;
        size_t n_old_keep = 0;
        int r;

        old = image_store_get(store, name);
        /* Another platform of the same target adds to the record; a new target replaces it. */
        if (old && !streq(old->target_digest, target_digest))
                old = NULL;

        i = calloc(1, sizeof(*i));
        if (!i)
                return -ENOMEM;
        i->platforms = calloc(n_platforms + (old ? old->n_platforms : 0), sizeof(ImagePlatform));
        if (!i->platforms)
                return -ENOMEM;
        i->name = strdup(name);
        i->target_digest = strdup(target_digest);
        i->target_media_type = strdup(target_media_type);
        i->target_size = target_size;
        if (!i->name || !i->target_digest || !i->target_media_type)
                return -ENOMEM;
        clock_gettime(CLOCK_REALTIME, &ts);
        i->pulled_at_usec = (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;

        for (size_t k = 0; k < n_platforms; k++) {
                i->n_platforms++;
                r = build_platform(&platforms[k], &i->platforms[k]);
                if (r < 0)
                        return r;
                i->platforms[k].unpacked =
                        platforms[k].unpacked || platform_unpacked_before(store, name, &i->platforms[k]);
        }
        if (old) {
                _cleanup_(image_freep) Image *copy = NULL;

                r = image_copy(old, NULL, &copy);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < copy->n_platforms; k++) {
                        bool dup = false;

                        for (size_t n = 0; n < n_platforms; n++)
                                dup = dup || streq(copy->platforms[k].platform, i->platforms[n].platform);
                        if (dup)
                                continue;
                        i->platforms[i->n_platforms++] = copy->platforms[k];
                        copy->platforms[k] = (ImagePlatform){};
                        n_old_keep++;
                }
        }
        log_debug("Image record for '%s': %zu new platform(s), %zu kept.", i->name, n_platforms, n_old_keep);
        *ret = TAKE_PTR(i);
        return 0;
}

int image_record_mark_unpacked(ImageStore *store, const char *name, const char *target_digest,
                               const char *platform, char *const *chain_ids) {
        _cleanup_(image_freep) Image *copy = NULL;
        const Image *old;
        int r;

        old = image_store_get(store, name);
        if (!old || !streq_ptr(old->target_digest, target_digest)) {
                log_info("Image '%s' changed while it was being unpacked; its record is left as is.", name);
                return 0;
        }
        r = image_copy(old, NULL, &copy);
        if (r < 0)
                return r;
        for (size_t k = 0; k < copy->n_platforms; k++) {
                ImagePlatform *ip = &copy->platforms[k];

                if (!streq_ptr(ip->platform, platform) || !ip->chain_ids ||
                    !g_strv_equal((const char *const *) ip->chain_ids, (const char *const *) chain_ids))
                        continue;
                if (ip->unpacked)
                        return 0;
                ip->unpacked = true;
                return image_store_put(store, &copy);
        }
        return 0;
}
