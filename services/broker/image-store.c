/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dirent.h>
#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

#include "berth-limits.h"
#include "digest.h"
#include "fs-util.h"
#include "image-store.h"
#include "json-util.h"
#include "log.h"
#include "oci-ref.h"

#define IMAGE_SCHEMA_VERSION 1

struct ImageStore {
        int dir_fd; /* <state>/meta/images */
        char *dir_path;
        GHashTable *images; /* name → Image* (owned) */
};

/* ---- Image ------------------------------------------------------------------------------------------ */

void image_platform_done(ImagePlatform *p) {
        if (!p)
                return;
        free(p->platform);
        free(p->manifest_digest);
        free(p->manifest_media_type);
        free(p->config_digest);
        free(p->config_media_type);
        for (size_t i = 0; i < p->n_layers; i++) {
                free(p->layers[i].digest);
                free(p->layers[i].media_type);
                free(p->layers[i].diff_id);
        }
        free(p->layers);
        strv_freep(&p->chain_ids);
        if (p->config)
                json_node_unref(p->config);
        *p = (ImagePlatform){};
}

Image *image_free(Image *i) {
        if (!i)
                return NULL;
        free(i->name);
        free(i->target_digest);
        free(i->target_media_type);
        for (size_t k = 0; k < i->n_platforms; k++)
                image_platform_done(&i->platforms[k]);
        free(i->platforms);
        return mfree(i);
}

static void image_free_notify(gpointer p) {
        image_free(p);
}

bool image_references_blob(const Image *i, const char *digest) {
        if (streq_ptr(i->target_digest, digest))
                return true;
        for (size_t k = 0; k < i->n_platforms; k++) {
                const ImagePlatform *p = &i->platforms[k];

                if (streq_ptr(p->manifest_digest, digest) || streq_ptr(p->config_digest, digest))
                        return true;
                for (size_t l = 0; l < p->n_layers; l++)
                        if (streq_ptr(p->layers[l].digest, digest))
                                return true;
        }
        return false;
}

uint64_t image_size(const Image *i) {
        g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
        uint64_t total = 0;

#define ADD(d, s)                                                                                           \
        do {                                                                                                \
                if ((d) && g_hash_table_add(seen, (gpointer) (d)))                                          \
                        total += (s);                                                                       \
        } while (0)

        ADD(i->target_digest, i->target_size);
        for (size_t k = 0; k < i->n_platforms; k++) {
                const ImagePlatform *p = &i->platforms[k];

                ADD(p->manifest_digest, p->manifest_size);
                ADD(p->config_digest, p->config_size);
                for (size_t l = 0; l < p->n_layers; l++)
                        ADD(p->layers[l].digest, p->layers[l].size);
        }
#undef ADD
        return total;
}

char *image_platforms_string(const Image *i) {
        g_autoptr(GString) s = g_string_new(NULL);

        for (size_t k = 0; k < i->n_platforms; k++) {
                if (k > 0)
                        g_string_append_c(s, ',');
                g_string_append(s, i->platforms[k].platform);
        }
        return strdup(s->str);
}

/* ---- JSON ------------------------------------------------------------------------------------------- */

static void add_string(JsonBuilder *b, const char *key, const char *value) {
        json_builder_set_member_name(b, key);
        if (value)
                json_builder_add_string_value(b, value);
        else
                json_builder_add_null_value(b);
}

static void add_uint(JsonBuilder *b, const char *key, uint64_t value) {
        json_builder_set_member_name(b, key);
        json_builder_add_int_value(b, (gint64) value);
}

static void add_descriptor(JsonBuilder *b, const char *key, const char *digest, const char *media_type,
                           uint64_t size) {
        json_builder_set_member_name(b, key);
        json_builder_begin_object(b);
        add_string(b, "digest", digest);
        add_string(b, "media_type", media_type);
        add_uint(b, "size", size);
        json_builder_end_object(b);
}

JsonNode *image_to_json(const Image *i) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc((gint64) (i->pulled_at_usec / 1000000));
        g_autofree char *when = t ? g_date_time_format_iso8601(t) : NULL;

        json_builder_begin_object(b);
        add_uint(b, "schema_version", IMAGE_SCHEMA_VERSION);
        add_string(b, "name", i->name);
        add_descriptor(b, "target", i->target_digest, i->target_media_type, i->target_size);
        json_builder_set_member_name(b, "platforms");
        json_builder_begin_array(b);
        for (size_t k = 0; k < i->n_platforms; k++) {
                const ImagePlatform *p = &i->platforms[k];

                json_builder_begin_object(b);
                add_string(b, "platform", p->platform);
                add_descriptor(b, "manifest", p->manifest_digest, p->manifest_media_type, p->manifest_size);
                add_descriptor(b, "config", p->config_digest, p->config_media_type, p->config_size);
                json_builder_set_member_name(b, "layers");
                json_builder_begin_array(b);
                for (size_t l = 0; l < p->n_layers; l++) {
                        json_builder_begin_object(b);
                        add_string(b, "digest", p->layers[l].digest);
                        add_string(b, "media_type", p->layers[l].media_type);
                        add_uint(b, "size", p->layers[l].size);
                        add_string(b, "diff_id", p->layers[l].diff_id);
                        json_builder_end_object(b);
                }
                json_builder_end_array(b);
                json_builder_set_member_name(b, "chain_ids");
                json_builder_begin_array(b);
                STRV_FOREACH(c, p->chain_ids)
                json_builder_add_string_value(b, *c);
                json_builder_end_array(b);
                json_builder_set_member_name(b, "unpacked");
                json_builder_add_boolean_value(b, p->unpacked);
                json_builder_set_member_name(b, "image_config");
                if (p->config)
                        json_builder_add_value(b, json_node_copy(p->config));
                else {
                        json_builder_begin_object(b);
                        json_builder_end_object(b);
                }
                json_builder_end_object(b);
        }
        json_builder_end_array(b);
        add_string(b, "pulled_at", when);
        add_uint(b, "pulled_at_usec", i->pulled_at_usec);
        json_builder_end_object(b);
        return json_builder_get_root(b);
}

typedef struct JDescriptor {
        char *digest;
        char *media_type;
        uint64_t size;
        char *diff_id;
} JDescriptor;

static void jdescriptor_done(JDescriptor *d) {
        free(d->digest);
        free(d->media_type);
        free(d->diff_id);
        *d = (JDescriptor){};
}

static const JsonField descriptor_fields[] = {
        { "digest", JSON_FIELD_STRING, offsetof(JDescriptor, digest), JSON_MANDATORY },
        { "media_type", JSON_FIELD_STRING, offsetof(JDescriptor, media_type), JSON_MANDATORY },
        { "size", JSON_FIELD_UINT64, offsetof(JDescriptor, size), JSON_MANDATORY },
        { "diff_id", JSON_FIELD_STRING, offsetof(JDescriptor, diff_id), 0 },
        {}
};

static int descriptor_from_node(JsonNode *node, bool want_diff_id, JDescriptor *d, char **ret_error) {
        int r;

        if (!JSON_NODE_HOLDS_OBJECT(node))
                return json_set_error(ret_error, EBADMSG, "descriptor must be an object");
        r = json_dispatch(json_node_get_object(node), descriptor_fields, d, NULL, ret_error);
        if (r < 0)
                return r;
        if (digest_validate(d->digest, NULL) < 0)
                return json_set_error(ret_error, EBADMSG, "invalid digest");
        if (want_diff_id && (!d->diff_id || digest_validate(d->diff_id, NULL) < 0))
                return json_set_error(ret_error, EBADMSG, "invalid or missing diff_id");
        if (d->size > BLOB_SIZE_MAX)
                return json_set_error(ret_error, EBADMSG, "size out of range");
        return 0;
}

static int dispatch_descriptor(JsonNode *node, void *target, void *userdata, char **ret_error) {
        jdescriptor_done(target);
        return descriptor_from_node(node, false, target, ret_error);
}

typedef struct JPlatform {
        char *platform;
        JDescriptor manifest, config;
        JsonArray *layers;
        char **chain_ids;
        JsonObject *image_config;
        bool unpacked;
} JPlatform;

static void jplatform_done(JPlatform *p) {
        free(p->platform);
        jdescriptor_done(&p->manifest);
        jdescriptor_done(&p->config);
        if (p->layers)
                json_array_unref(p->layers);
        strv_freep(&p->chain_ids);
        if (p->image_config)
                json_object_unref(p->image_config);
}

static const JsonField platform_fields[] = {
        { "platform", JSON_FIELD_STRING, offsetof(JPlatform, platform), JSON_MANDATORY },
        { "manifest", JSON_FIELD_CUSTOM, offsetof(JPlatform, manifest), JSON_MANDATORY,
          dispatch_descriptor },
        { "config", JSON_FIELD_CUSTOM, offsetof(JPlatform, config), JSON_MANDATORY, dispatch_descriptor },
        { "layers", JSON_FIELD_ARRAY, offsetof(JPlatform, layers), JSON_MANDATORY },
        { "chain_ids", JSON_FIELD_STRV, offsetof(JPlatform, chain_ids), JSON_MANDATORY },
        { "image_config", JSON_FIELD_OBJECT, offsetof(JPlatform, image_config), 0 },
        { "unpacked", JSON_FIELD_BOOL, offsetof(JPlatform, unpacked), 0 },
        {}
};

/* Moves what j holds into p once every part is checked; p may be half-filled on failure. */
static int platform_fill(JPlatform *j, ImagePlatform *p, char **ret_error) {
        guint n;
        int r;

        n = json_array_get_length(j->layers);
        if (n > LAYERS_MAX || g_strv_length(j->chain_ids) != n)
                return json_set_error(ret_error, EBADMSG,
                                      "layers and chain_ids disagree or exceed the limit");
        p->layers = calloc(n ?: 1, sizeof(ImageLayer));
        if (!p->layers)
                return -ENOMEM;
        for (guint l = 0; l < n; l++) {
                _cleanup_(jdescriptor_done) JDescriptor d = {};

                r = descriptor_from_node(json_array_get_element(j->layers, l), true, &d, ret_error);
                if (r < 0)
                        return r;
                p->layers[l] = (ImageLayer){ .digest = TAKE_PTR(d.digest),
                                             .media_type = TAKE_PTR(d.media_type),
                                             .size = d.size,
                                             .diff_id = TAKE_PTR(d.diff_id) };
                p->n_layers++;
        }
        STRV_FOREACH(c, j->chain_ids)
        if (digest_validate(*c, NULL) < 0)
                return json_set_error(ret_error, EBADMSG, "invalid chain id");

        p->platform = TAKE_PTR(j->platform);
        p->manifest_digest = TAKE_PTR(j->manifest.digest);
        p->manifest_media_type = TAKE_PTR(j->manifest.media_type);
        p->manifest_size = j->manifest.size;
        p->config_digest = TAKE_PTR(j->config.digest);
        p->config_media_type = TAKE_PTR(j->config.media_type);
        p->config_size = j->config.size;
        p->chain_ids = TAKE_PTR(j->chain_ids);
        p->unpacked = j->unpacked;
        if (j->image_config) {
                p->config = json_node_new(JSON_NODE_OBJECT);
                json_node_set_object(p->config, j->image_config);
        }
        return 0;
}

static int platform_from_node(JsonNode *node, ImagePlatform *p, char **ret_error) {
        _cleanup_(jplatform_done) JPlatform j = {};
        int r;

        if (!JSON_NODE_HOLDS_OBJECT(node))
                return json_set_error(ret_error, EBADMSG, "platform entry must be an object");
        r = json_dispatch(json_node_get_object(node), platform_fields, &j, NULL, ret_error);
        if (r >= 0)
                r = platform_fill(&j, p, ret_error);
        if (r < 0)
                /* Undo: a half-filled platform is never kept. */
                image_platform_done(p);
        return r;
}

typedef struct JImage {
        uint64_t schema_version;
        char *name;
        JDescriptor target;
        JsonArray *platforms;
        uint64_t pulled_at_usec;
} JImage;

static const JsonField image_fields[] = {
        { "schema_version", JSON_FIELD_UINT64, offsetof(JImage, schema_version), JSON_MANDATORY },
        { "name", JSON_FIELD_STRING, offsetof(JImage, name), JSON_MANDATORY },
        { "target", JSON_FIELD_CUSTOM, offsetof(JImage, target), JSON_MANDATORY, dispatch_descriptor },
        { "platforms", JSON_FIELD_ARRAY, offsetof(JImage, platforms), JSON_MANDATORY },
        { "pulled_at_usec", JSON_FIELD_UINT64, offsetof(JImage, pulled_at_usec), 0 },
        {}
};

static void jimage_done(JImage *j) {
        free(j->name);
        jdescriptor_done(&j->target);
        if (j->platforms)
                json_array_unref(j->platforms);
}

int image_from_json(JsonNode *node, Image **ret, char **ret_error) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        _cleanup_(image_freep) Image *i = NULL;
        _cleanup_free_ char *canonical = NULL;
        _cleanup_(jimage_done) JImage j = {};
        guint n;
        int r;

        if (!JSON_NODE_HOLDS_OBJECT(node))
                return json_set_error(ret_error, EBADMSG, "document must be an object");
        r = json_dispatch(json_node_get_object(node), image_fields, &j, NULL, ret_error);
        if (r < 0)
                return r;
        if (j.schema_version != IMAGE_SCHEMA_VERSION)
                return json_set_error(ret_error, EPROTONOSUPPORT, "unknown schema version %" PRIu64,
                                      j.schema_version);
        r = image_reference_parse(j.name, &ref, NULL);
        if (r >= 0) {
                canonical = image_reference_to_string(ref);
                if (!canonical)
                        return -ENOMEM;
        }
        if (r < 0 || !streq(canonical, j.name))
                return json_set_error(ret_error, EBADMSG, "name is not a normalised reference");
        n = json_array_get_length(j.platforms);
        if (n == 0 || n > INDEX_MANIFESTS_MAX)
                return json_set_error(ret_error, EBADMSG, "bad number of platforms");

        i = calloc(1, sizeof(*i));
        if (!i || !(i->platforms = calloc(n, sizeof(ImagePlatform))))
                return -ENOMEM;
        for (guint k = 0; k < n; k++) {
                r = platform_from_node(json_array_get_element(j.platforms, k), &i->platforms[k], ret_error);
                if (r < 0)
                        return r;
                i->n_platforms++;
        }
        i->name = TAKE_PTR(j.name);
        i->target_digest = TAKE_PTR(j.target.digest);
        i->target_media_type = TAKE_PTR(j.target.media_type);
        i->target_size = j.target.size;
        i->pulled_at_usec = j.pulled_at_usec;
        *ret = TAKE_PTR(i);
        return 0;
}

static char *dup_or_null(const char *s, bool *oom) {
        char *d;

        if (!s)
                return NULL;
        d = strdup(s);
        if (!d)
                *oom = true;
        return d;
}

int image_copy(const Image *src, const char *new_name, Image **ret) {
        _cleanup_(image_freep) Image *i = NULL;
        bool oom = false;

        i = calloc(1, sizeof(*i));
        if (!i)
                return -ENOMEM;
        i->platforms = calloc(src->n_platforms ?: 1, sizeof(ImagePlatform));
        if (!i->platforms)
                return -ENOMEM;
        i->name = dup_or_null(new_name ?: src->name, &oom);
        i->target_digest = dup_or_null(src->target_digest, &oom);
        i->target_media_type = dup_or_null(src->target_media_type, &oom);
        i->target_size = src->target_size;
        i->pulled_at_usec = src->pulled_at_usec;
        for (size_t k = 0; k < src->n_platforms; k++) {
                const ImagePlatform *s = &src->platforms[k];
                ImagePlatform *p = &i->platforms[k];

                i->n_platforms++;
                p->platform = dup_or_null(s->platform, &oom);
                p->manifest_digest = dup_or_null(s->manifest_digest, &oom);
                p->manifest_media_type = dup_or_null(s->manifest_media_type, &oom);
                p->manifest_size = s->manifest_size;
                p->config_digest = dup_or_null(s->config_digest, &oom);
                p->config_media_type = dup_or_null(s->config_media_type, &oom);
                p->config_size = s->config_size;
                p->layers = calloc(s->n_layers ?: 1, sizeof(ImageLayer));
                if (!p->layers)
                        return -ENOMEM;
                for (size_t l = 0; l < s->n_layers; l++) {
                        p->layers[l] = (ImageLayer){
                                .digest = dup_or_null(s->layers[l].digest, &oom),
                                .media_type = dup_or_null(s->layers[l].media_type, &oom),
                                .size = s->layers[l].size,
                                .diff_id = dup_or_null(s->layers[l].diff_id, &oom),
                        };
                        p->n_layers++;
                }
                p->chain_ids = g_strdupv(s->chain_ids);
                p->unpacked = s->unpacked;
                if (s->config)
                        p->config = json_node_copy(s->config);
        }
        if (oom)
                return -ENOMEM;
        *ret = TAKE_PTR(i);
        return 0;
}

/* ---- store ------------------------------------------------------------------------------------------ */

static int name_to_file(const char *name, char ret[static DIGEST_STRING_MAX + 8]) {
        char d[DIGEST_STRING_MAX];
        int r;

        r = digest_buffer(DIGEST_SHA256, name, strlen(name), d);
        if (r < 0)
                return r;
        snprintf(ret, DIGEST_STRING_MAX + 8, "%s.json", digest_hex(d));
        return 0;
}

static int load_one(ImageStore *s, const char *file) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *data = NULL, *msg = NULL;
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_(image_freep) Image *i = NULL;
        char expected[DIGEST_STRING_MAX + 8];
        size_t got = 0;
        int r;

        fd = openat(s->dir_fd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return log_warning_errno(errno, "Failed to open image document '%s/%s', skipping: %m",
                                         s->dir_path, file);
        r = read_regular_file_fd(fd, META_DOCUMENT_MAX, &data, &got);
        if (r == -EBADFD || r == -EFBIG)
                return log_warning_errno(
                        EBADMSG, "Image document '%s/%s' is not a regular file of sane size, skipping.",
                        s->dir_path, file);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_warning_errno(r, "Failed to read '%s/%s', skipping: %m", s->dir_path, file);
        r = json_parse_bounded(data, got, META_DOCUMENT_MAX, &root, &msg);
        if (r >= 0)
                r = image_from_json(root, &i, &msg);
        if (r < 0)
                return log_warning_errno(r, "Image document '%s/%s' is invalid (%s), skipping.", s->dir_path,
                                         file, strna(msg));
        r = name_to_file(i->name, expected);
        if (r < 0)
                return r;
        if (!streq(expected, file))
                return log_warning_errno(
                        EBADMSG, "Image document '%s/%s' names '%s', which belongs elsewhere, skipping.",
                        s->dir_path, file, i->name);
        g_hash_table_replace(s->images, i->name, i);
        TAKE_PTR(i);
        return 0;
}

static int load_all(ImageStore *s) {
        _cleanup_close_ int dfd = -EBADF;
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;

        dfd = openat(s->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        d = fdopendir(dfd);
        if (!d)
                return -errno;
        TAKE_FD(dfd);
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                /* Leftover temp files (write_file_atomic_at's ".#name.random.tmp") from a kill between
                 * write and rename: never a document. */
                if (l != 64 + 5 || !g_str_has_suffix(de->d_name, ".json") || de->d_name[0] == '.') {
                        if (g_str_has_prefix(de->d_name, ".#") && g_str_has_suffix(de->d_name, ".tmp"))
                                (void) unlinkat(s->dir_fd, de->d_name, 0);
                        continue;
                }
                if (g_hash_table_size(s->images) >= IMAGES_MAX) {
                        log_warning("More than %u image documents, ignoring the rest.", IMAGES_MAX);
                        break;
                }
                (void) load_one(s, de->d_name);
        }
        return 0;
}

int image_store_open(const char *state_dir, ImageStore **ret) {
        _cleanup_(image_store_freep) ImageStore *s = NULL;
        _cleanup_close_ int meta_fd = -EBADF;
        _cleanup_free_ char *meta = NULL;
        int r;

        if (asprintf_safe(&meta, "%s/meta", state_dir) < 0)
                return -ENOMEM;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->dir_fd = -EBADF;
        s->images = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, image_free_notify);
        if (asprintf_safe(&s->dir_path, "%s/images", meta) < 0) {
                s->dir_path = NULL;
                return -ENOMEM;
        }

        if (mkdir(meta, 0700) < 0 && errno != EEXIST)
                return -errno;
        meta_fd = open(meta, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (meta_fd < 0)
                return -errno;
        if (mkdirat(meta_fd, "images", 0700) < 0 && errno != EEXIST)
                return -errno;
        s->dir_fd = openat(meta_fd, "images", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (s->dir_fd < 0)
                return -errno;

        r = load_all(s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

ImageStore *image_store_free(ImageStore *s) {
        if (!s)
                return NULL;
        safe_close(s->dir_fd);
        if (s->images)
                g_hash_table_destroy(s->images);
        free(s->dir_path);
        return mfree(s);
}

Image *image_store_get(ImageStore *s, const char *name) {
        return g_hash_table_lookup(s->images, name);
}

size_t image_store_count(ImageStore *s) {
        return g_hash_table_size(s->images);
}

static int compare_images(const void *a, const void *b) {
        const Image *x = *(Image *const *) a, *y = *(Image *const *) b;
        return strcmp(x->name, y->name);
}

int image_store_list(ImageStore *s, Image ***ret, size_t *ret_n) {
        GHashTableIter iter;
        gpointer value;
        Image **l;
        size_t n = 0;

        l = calloc(g_hash_table_size(s->images) + 1, sizeof(Image *));
        if (!l)
                return -ENOMEM;
        g_hash_table_iter_init(&iter, s->images);
        while (g_hash_table_iter_next(&iter, NULL, &value))
                l[n++] = value;
        qsort(l, n, sizeof(Image *), compare_images);
        *ret = l;
        *ret_n = n;
        return 0;
}

int image_store_put(ImageStore *s, Image **image) {
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_free_ char *text = NULL;
        g_autofree char *line = NULL;
        char file[DIGEST_STRING_MAX + 8];
        Image *i = *image;
        int r;

        if (!g_hash_table_contains(s->images, i->name) && g_hash_table_size(s->images) >= IMAGES_MAX)
                return -E2BIG;

        r = name_to_file(i->name, file);
        if (r < 0)
                return r;
        root = image_to_json(i);
        text = json_to_string_compact(root);
        if (!text)
                return -ENOMEM;
        if (strlen(text) > META_DOCUMENT_MAX)
                return -EFBIG;

        line = g_strconcat(text, "\n", NULL);
        r = write_file_atomic_at(s->dir_fd, file, line, strlen(line), 0600);
        if (r < 0)
                return r;

        g_hash_table_replace(s->images, i->name, i);
        *image = NULL;
        return 0;
}

int image_store_remove(ImageStore *s, const char *name) {
        char file[DIGEST_STRING_MAX + 8];
        int r;

        if (!g_hash_table_contains(s->images, name))
                return -ENOENT;
        r = name_to_file(name, file);
        if (r < 0)
                return r;
        if (unlinkat(s->dir_fd, file, 0) < 0 && errno != ENOENT)
                return -errno;
        if (fsync(s->dir_fd) < 0)
                return -errno;
        g_hash_table_remove(s->images, name);
        return 0;
}
