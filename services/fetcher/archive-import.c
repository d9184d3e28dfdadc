/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

#include "archive-import.h"
#include "archive-dl.h"
#include "berth-limits.h"
#include "bus-names.h"
#include "bus-util.h"
#include "digest.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"
#include "oci-types.h"

#define READ_BLOCK_SIZE (128U * 1024U)
#define ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"
#define ANNOTATION_CONTAINERD_NAME "io.containerd.image.name"

/* SECURITY: nothing in the archive names a path we open. Entry names are only keys of the two tables
 * below; blob names become digests through digest_validate(); links are resolved against the
 * archive's own entries and never leave them. */

typedef struct FileRef {
        char digest[DIGEST_STRING_MAX];
        uint64_t size;
        uint8_t magic[4]; /* first bytes, to tell a gzip/zstd layer from a plain tar */
        size_t n_magic;
} FileRef;

typedef struct Import {
        ContentStore *store;
        ArchiveReport *rep;
        int fd;
        uint8_t *rbuf;     /* the read callback's: libarchive reads from it lazily */
        uint8_t *buf;      /* ours, for entry data */
        GHashTable *files; /* normalised path → FileRef* (stored regular files) */
        GHashTable *links; /* normalised path → normalised target (symlinks, hardlinks) */
        char *index_json;
        size_t index_size;
        char *manifest_json;
        size_t manifest_size;
        uint64_t total;
        unsigned entries;
        JsonBuilder *images; /* array being built in rep->result */
        unsigned n_images;
} Import;

/* ---- reading ------------------------------------------------------------------------------------- */

static la_ssize_t read_callback(struct archive *a, void *userdata, const void **ret) {
        Import *im = userdata;

        for (;;) {
                ssize_t k;

                archive_stall_guard();
                k = read(im->fd, im->rbuf, READ_BLOCK_SIZE);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        archive_set_error(a, errno, "read error: %s", strerror(errno));
                        return -1;
                }
                *ret = im->rbuf;
                return k;
        }
}

/* "./a//b/" → "a/b". Refuses absolute names, "..", empty names and overlong ones. */
static int normalize_path(const char *p, char **ret) {
        g_autoptr(GString) s = g_string_new(NULL);
        g_auto(GStrv) parts = NULL;

        if (!p || !*p || strlen(p) > PATH_LENGTH_MAX)
                return -EINVAL;
        if (p[0] == '/')
                return -EPERM;
        parts = g_strsplit(p, "/", -1);
        for (char **c = parts; *c; c++) {
                if (!**c || streq(*c, "."))
                        continue;
                if (streq(*c, ".."))
                        return -EPERM;
                if (s->len > 0)
                        g_string_append_c(s, '/');
                g_string_append(s, *c);
        }
        if (s->len == 0)
                return -EINVAL;
        *ret = g_string_free(TAKE_PTR(s), false);
        return 0;
}

/* A symlink's target, relative to the link's directory, resolved lexically inside the archive: "..", may
 * climb to the archive's root but not above it. */
static int resolve_link_target(const char *link, const char *target, char **ret) {
        g_autoptr(GPtrArray) stack = g_ptr_array_new_with_free_func(g_free);
        g_auto(GStrv) lparts = NULL, tparts = NULL;
        g_autoptr(GString) s = g_string_new(NULL);

        if (!target || !*target || strlen(target) > PATH_LENGTH_MAX)
                return -EINVAL;
        if (target[0] == '/')
                return -EPERM;
        lparts = g_strsplit(link, "/", -1);
        for (char **c = lparts; *c && *(c + 1); c++) /* the link's directory */
                g_ptr_array_add(stack, g_strdup(*c));
        tparts = g_strsplit(target, "/", -1);
        for (char **c = tparts; *c; c++) {
                if (!**c || streq(*c, "."))
                        continue;
                if (streq(*c, "..")) {
                        if (stack->len == 0)
                                return -EPERM;
                        g_ptr_array_remove_index(stack, stack->len - 1);
                        continue;
                }
                g_ptr_array_add(stack, g_strdup(*c));
        }
        for (guint i = 0; i < stack->len; i++) {
                if (i > 0)
                        g_string_append_c(s, '/');
                g_string_append(s, stack->pdata[i]);
        }
        if (s->len == 0)
                return -EINVAL;
        *ret = g_string_free(TAKE_PTR(s), false);
        return 0;
}

static int read_small(Import *im, struct archive *a, const char *path, uint64_t size, uint64_t max,
                      char **ret, size_t *ret_size) {
        _cleanup_free_ char *data = NULL;
        size_t got = 0;

        if (size > max)
                return archive_report_error(im->rep, BERTH_ERROR_LIMIT, EFBIG,
                                            "Archive entry '%s' is %" PRIu64
                                            " bytes, more than the limit of %" PRIu64,
                                            path, size, max);
        data = malloc(size + 1);
        if (!data)
                return -ENOMEM;
        while (got < size) {
                la_ssize_t k = archive_read_data(a, data + got, size - got);
                if (k < 0)
                        return archive_report_error(im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                                    "Failed to read '%s' from the archive: %s", path,
                                                    archive_error_string(a) ?: "read error");
                if (k == 0)
                        break;
                got += (size_t) k;
        }
        if (got != size)
                return archive_report_error(im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                            "Archive entry '%s' is truncated", path);
        data[size] = 0;
        *ret = TAKE_PTR(data);
        *ret_size = size;
        return 0;
}

static void remember_magic(FileRef *f, const uint8_t *p, size_t n) {
        while (f->n_magic < sizeof(f->magic) && n > 0) {
                f->magic[f->n_magic++] = *p++;
                n--;
        }
}

/* Streams one regular entry into the store. expected: the digest its name claims (blobs/…), or NULL. */
static int store_entry(Import *im, struct archive *a, const char *path, const char *expected, uint64_t size,
                       FileRef *f) {
        _cleanup_(ingest_freep) Ingest *ingest = NULL;
        _cleanup_(hasher_freep) Hasher *h = NULL;
        char actual[DIGEST_STRING_MAX];
        uint64_t got = 0;
        int r;

        f->size = size;
        if (size > BLOB_SIZE_MAX)
                return archive_report_error(im->rep, BERTH_ERROR_LIMIT, EFBIG,
                                            "Archive entry '%s' is too large", path);

        /* Already stored: the archive's copy is still hashed (an archive whose blob does not match its
         * name is refused whatever the store holds), just not written. */
        r = expected ? content_store_has_blob(im->store, expected) : 0;
        if (r < 0)
                return archive_report_error(im->rep, BERTH_ERROR_IO, r, "Failed to look up '%s': %s",
                                            expected, strerror(-r));
        if (r > 0) {
                DigestAlgorithm alg;

                (void) digest_validate(expected, &alg);
                r = hasher_new(alg, &h);
        } else
                r = ingest_open_anonymous(im->store, expected, size, &ingest);
        if (r < 0)
                return archive_report_error(im->rep, BERTH_ERROR_IO, r, "Failed to store '%s': %s", path,
                                            strerror(-r));

        for (;;) {
                la_ssize_t k = archive_read_data(a, im->buf, READ_BLOCK_SIZE);

                if (k < 0) {
                        r = archive_report_error(im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                                 "Failed to read '%s' from the archive: %s", path,
                                                 archive_error_string(a) ?: "read error");
                        goto fail;
                }
                if (k == 0)
                        break;
                remember_magic(f, im->buf, (size_t) k);
                got += (uint64_t) k;
                r = h ? hasher_update(h, im->buf, (size_t) k) : ingest_write(ingest, im->buf, (size_t) k);
                if (r < 0) {
                        r = archive_report_error(im->rep, BERTH_ERROR_IO, r, "Failed to store '%s': %s",
                                                 path, strerror(-r));
                        goto fail;
                }
        }
        if (got != size) {
                r = archive_report_error(im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                         "Archive entry '%s' is truncated", path);
                goto fail;
        }
        if (h) {
                r = hasher_finish(h, actual);
                if (r < 0)
                        return r;
                if (!digest_equal(actual, expected))
                        return archive_report_error(
                                im->rep, BERTH_ERROR_DIGEST_MISMATCH, EBADMSG,
                                "Archive entry '%s' does not match its name: its content hashes to %s", path,
                                actual);
                strcpy(f->digest, expected);
                return 0;
        }
        r = ingest_commit(ingest, NULL, actual);
        if (r == -EBADMSG)
                /* SECURITY: ingest_commit() deleted the data; nothing is visible under the claimed digest.
                 */
                return archive_report_error(
                        im->rep, BERTH_ERROR_DIGEST_MISMATCH, r,
                        "Archive entry '%s' does not match its name: its content hashes to %s", path,
                        actual);
        if (r < 0)
                return archive_report_error(im->rep, BERTH_ERROR_IO, r, "Failed to commit '%s': %s", path,
                                            strerror(-r));
        strcpy(f->digest, actual);
        return 0;
fail:
        if (ingest)
                (void) ingest_abort(ingest);
        return r;
}

static bool is_blob_path(const char *path, char digest[static DIGEST_STRING_MAX]) {
        g_auto(GStrv) parts = g_strsplit(path, "/", 4);

        if (g_strv_length(parts) != 3 || !streq(parts[0], "blobs"))
                return false;
        size_t la = strlen(parts[1]), lh = strlen(parts[2]);

        if (la + 1 + lh >= DIGEST_STRING_MAX)
                return false;
        memcpy(digest, parts[1], la);
        digest[la] = ':';
        memcpy(digest + la + 1, parts[2], lh + 1);
        return true;
}

/* What docker save writes besides manifest.json: <id>.json configs at the top, <dir>/layer.tar. skopeo's
 * docker-archive (and docker ≥ 25) puts each layer at the top as <digest>.tar instead, with <id>/layer.tar
 * a symlink to it; manifest.json names whichever the writer chose, and lookup_file() follows links. */
static bool is_docker_layer_file(const char *path) {
        return !strchr(path, '/') && g_str_has_suffix(path, ".tar");
}

static bool is_docker_file(const char *path) {
        const char *slash = strchr(path, '/');

        if (!slash)
                return (g_str_has_suffix(path, ".json") && !streq(path, "manifest.json") &&
                        !streq(path, "index.json")) ||
                       is_docker_layer_file(path);
        return streq(slash + 1, "layer.tar");
}

static int read_entries(Import *im, struct archive *a) {
        for (;;) {
                _cleanup_free_ char *path = NULL, *target = NULL;
                struct archive_entry *e;
                /* "": is_blob_path() fills it only for blobs/<alg>/<hex>, so "blobs/layer.tar" (a docker
                 * file by name) fails digest_validate() below instead of reading stale stack bytes. */
                char digest[DIGEST_STRING_MAX] = "";
                const char *raw, *link;
                uint64_t size;
                int r;

                r = archive_read_next_header(a, &e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN) {
                        return archive_report_error(im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                                    "Not a readable tar archive: %s",
                                                    archive_error_string(a) ?: "format error");
                }
                if (++im->entries > ARCHIVE_ENTRIES_MAX)
                        return archive_report_error(im->rep, BERTH_ERROR_LIMIT, E2BIG,
                                                    "The archive has more than %u entries",
                                                    ARCHIVE_ENTRIES_MAX);
                raw = archive_entry_pathname(e);
                r = normalize_path(raw, &path);
                if (r < 0)
                        return archive_report_error(im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                                    "Refusing archive entry '%.200s': %s", strna(raw),
                                                    r == -EPERM ? "absolute or '..' path" : "invalid name");
                if (g_hash_table_contains(im->files, path) || g_hash_table_contains(im->links, path))
                        return archive_report_error(im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                                    "Archive entry '%s' appears twice", path);

                link = archive_entry_hardlink(e);
                if (link) {
                        /* Hard links name another entry from the archive's root. */
                        r = normalize_path(link, &target);
                        if (r < 0)
                                return archive_report_error(
                                        im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                        "Refusing hard link '%s' to '%.200s': it leaves the archive", path,
                                        link);
                        g_hash_table_insert(im->links, TAKE_PTR(path), TAKE_PTR(target));
                        continue;
                }
                switch (archive_entry_filetype(e)) {
                case AE_IFDIR:
                        continue;
                case AE_IFLNK:
                        link = archive_entry_symlink(e);
                        r = resolve_link_target(path, link, &target);
                        if (r < 0)
                                return archive_report_error(
                                        im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                        "Refusing symlink '%s' to '%.200s': it leaves the archive", path,
                                        strna(link));
                        g_hash_table_insert(im->links, TAKE_PTR(path), TAKE_PTR(target));
                        continue;
                case AE_IFREG:
                        break;
                default:
                        return archive_report_error(
                                im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                "Refusing archive entry '%s': not a file, directory or link", path);
                }

                if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0)
                        return archive_report_error(im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                                    "Archive entry '%s' has no size", path);
                size = (uint64_t) archive_entry_size(e);
                im->total += size;
                if (im->total > ARCHIVE_BYTES_MAX)
                        return archive_report_error(im->rep, BERTH_ERROR_LIMIT, EFBIG,
                                                    "The archive holds more than %llu bytes",
                                                    (unsigned long long) ARCHIVE_BYTES_MAX);

                if (streq(path, "oci-layout")) {
                        _cleanup_json_node_ JsonNode *root = NULL;
                        _cleanup_free_ char *data = NULL, *msg = NULL;
                        const char *v = NULL;
                        size_t n;

                        r = read_small(im, a, path, size, ARCHIVE_OCI_LAYOUT_SIZE_MAX, &data, &n);
                        if (r < 0)
                                return r;
                        r = json_parse_bounded(data, n, ARCHIVE_OCI_LAYOUT_SIZE_MAX, &root, &msg);
                        if (r >= 0 && JSON_NODE_HOLDS_OBJECT(root))
                                v = json_object_get_string_member_with_default(json_node_get_object(root),
                                                                               "imageLayoutVersion", NULL);
                        if (!v || !g_str_has_prefix(v, "1."))
                                return archive_report_error(
                                        im->rep, BERTH_ERROR_UNSUPPORTED, EPROTONOSUPPORT,
                                        "Unsupported oci-layout file (imageLayoutVersion %s)",
                                        v ? v : "missing");
                } else if (streq(path, "index.json")) {
                        r = read_small(im, a, path, size, MANIFEST_SIZE_MAX, &im->index_json,
                                       &im->index_size);
                        if (r < 0)
                                return r;
                } else if (streq(path, "manifest.json")) {
                        r = read_small(im, a, path, size, MANIFEST_SIZE_MAX, &im->manifest_json,
                                       &im->manifest_size);
                        if (r < 0)
                                return r;
                } else if (is_blob_path(path, digest) || is_docker_file(path)) {
                        bool blob = g_str_has_prefix(path, "blobs/");
                        FileRef *f;

                        if (blob && digest_validate(digest, NULL) < 0)
                                return archive_report_error(
                                        im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                        "Archive entry '%s' is not named by a valid digest", path);
                        if (!blob && !g_str_has_suffix(path, "/layer.tar") && !is_docker_layer_file(path) &&
                            size > CONFIG_SIZE_MAX)
                                return archive_report_error(im->rep, BERTH_ERROR_LIMIT, EFBIG,
                                                            "Archive entry '%s' is %" PRIu64
                                                            " bytes, more than the limit of %u",
                                                            path, size, CONFIG_SIZE_MAX);
                        f = calloc(1, sizeof(FileRef));
                        if (!f)
                                return -ENOMEM;
                        g_hash_table_insert(im->files, g_strdup(path), f);
                        r = store_entry(im, a, path, blob ? digest : NULL, size, f);
                        if (r < 0)
                                return r;
                } else {
                        /* repositories, <dir>/json, <dir>/VERSION, anything else: not ours to keep. */
                        r = archive_read_data_skip(a);
                        if (r < ARCHIVE_WARN)
                                return archive_report_error(im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                                            "Failed to read the archive: %s",
                                                            archive_error_string(a) ?: "read error");
                }
        }
        return 0;
}

/* ---- results ------------------------------------------------------------------------------------- */

static int add_image(Import *im, const char *name, const char *digest, const char *media_type,
                     uint64_t size) {
        if (++im->n_images > ARCHIVE_IMAGES_MAX)
                return archive_report_error(im->rep, BERTH_ERROR_LIMIT, E2BIG,
                                            "The archive names more than %u images", ARCHIVE_IMAGES_MAX);
        json_builder_begin_object(im->images);
        json_builder_set_member_name(im->images, "name");
        json_builder_add_string_value(im->images, name ?: "");
        json_builder_set_member_name(im->images, "digest");
        json_builder_add_string_value(im->images, digest);
        json_builder_set_member_name(im->images, "media_type");
        json_builder_add_string_value(im->images, media_type);
        json_builder_set_member_name(im->images, "size");
        json_builder_add_int_value(im->images, (gint64) size);
        json_builder_end_object(im->images);
        return 0;
}

/* The media type the document itself declares, when it is of the same kind as the index.json entry
 * says (ImageBuilder and docker list Docker manifests as OCI ones in index.json). */
static int sniff_media_type(Import *im, const Descriptor *d, char **ret) {
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_free_ char *data = NULL, *msg = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *mt;
        uint64_t size;
        ssize_t k;
        int r;

        r = content_store_open_blob(im->store, d->digest, &fd, &size);
        if (r == -ENOENT)
                return archive_report_error(
                        im->rep, BERTH_ERROR_NOT_FOUND, r,
                        "index.json names '%s', which neither the archive nor the content store holds",
                        d->digest);
        if (r < 0)
                return archive_report_error(im->rep, BERTH_ERROR_IO, r, "Failed to open '%s': %s", d->digest,
                                            strerror(-r));
        if (size != d->size)
                return archive_report_error(im->rep, BERTH_ERROR_DIGEST_MISMATCH, EBADMSG,
                                            "index.json says '%s' is %" PRIu64 " bytes, it is %" PRIu64,
                                            d->digest, d->size, size);
        if (size > MANIFEST_SIZE_MAX)
                return archive_report_error(im->rep, BERTH_ERROR_LIMIT, EFBIG,
                                            "'%s' is larger than %u bytes", d->digest, MANIFEST_SIZE_MAX);
        data = malloc(size + 1);
        if (!data)
                return -ENOMEM;
        k = pread_full(fd, data, size, 0);
        if (k < 0 || (uint64_t) k != size)
                return archive_report_error(im->rep, BERTH_ERROR_IO, EIO, "Failed to read '%s'", d->digest);
        r = json_parse_bounded(data, size, MANIFEST_SIZE_MAX, &root, &msg);
        if (r < 0 || !JSON_NODE_HOLDS_OBJECT(root))
                return archive_report_error(im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                            "'%s' is not a JSON document: %s", d->digest, strna(msg));
        mt = json_object_get_string_member_with_default(json_node_get_object(root), "mediaType", NULL);
        *ret = strdup(mt && media_type_kind(mt) == media_type_kind(d->media_type) ? mt : d->media_type);
        return *ret ? 0 : -ENOMEM;
}

static const char *annotation(JsonArray *manifests, guint i, const char *key) {
        JsonNode *n = json_array_get_element(manifests, i);
        JsonObject *a;

        if (!JSON_NODE_HOLDS_OBJECT(n))
                return NULL;
        n = json_object_get_member(json_node_get_object(n), "annotations");
        if (!n || !JSON_NODE_HOLDS_OBJECT(n))
                return NULL;
        a = json_node_get_object(n);
        n = json_object_get_member(a, key);
        if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
                return NULL;
        return json_node_get_string(n);
}

static int import_oci_layout(Import *im) {
        _cleanup_(oci_index_freep) OciIndex *index = NULL;
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_free_ char *msg = NULL;
        JsonArray *manifests;
        int r;

        r = oci_index_parse(im->index_json, im->index_size, MEDIA_TYPE_OCI_INDEX, &index, &msg);
        if (r < 0)
                return archive_report_error(im->rep,
                                            r == -EFBIG ? BERTH_ERROR_LIMIT : BERTH_ERROR_BAD_CONTENT, r,
                                            "Invalid index.json: %s", strna(msg));
        /* The same bytes again, for the annotations OciIndex does not keep (entry i ↔ manifests[i]). */
        r = json_parse_bounded(im->index_json, im->index_size, MANIFEST_SIZE_MAX, &root, &msg);
        if (r < 0)
                return archive_report_error(im->rep, BERTH_ERROR_BAD_CONTENT, r, "Invalid index.json: %s",
                                            strna(msg));
        manifests = json_object_get_array_or_null(json_node_get_object(root), "manifests");
        if (!manifests || json_array_get_length(manifests) != index->n_manifests)
                return archive_report_error(im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG, "Invalid index.json");

        for (size_t i = 0; i < index->n_manifests; i++) {
                const Descriptor *d = &index->manifests[i];
                _cleanup_free_ char *mt = NULL;
                MediaKind kind = media_type_kind(d->media_type);
                const char *name;

                /* Other artifacts (signatures, attestations) may ride along; they are not images. */
                if (kind != MEDIA_KIND_MANIFEST && kind != MEDIA_KIND_INDEX)
                        continue;
                r = sniff_media_type(im, d, &mt);
                if (r < 0)
                        return r;
                name = annotation(manifests, (guint) i, ANNOTATION_CONTAINERD_NAME);
                if (isempty(name))
                        name = annotation(manifests, (guint) i, ANNOTATION_REF_NAME);
                r = add_image(im, name, d->digest, mt, d->size);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A docker save path, through symlinks and hard links inside the archive, to a stored file. */
static const FileRef *lookup_file(Import *im, const char *raw) {
        _cleanup_free_ char *path = NULL;
        const char *p;

        if (normalize_path(raw, &path) < 0)
                return NULL;
        p = path;
        for (unsigned hop = 0; hop <= ARCHIVE_LINK_HOPS_MAX; hop++) {
                const FileRef *f = g_hash_table_lookup(im->files, p);
                if (f)
                        return f;
                p = g_hash_table_lookup(im->links, p);
                if (!p)
                        return NULL;
        }
        return NULL;
}

static const char *layer_media_type(const FileRef *f) {
        if (f->n_magic >= 2 && f->magic[0] == 0x1f && f->magic[1] == 0x8b)
                return MEDIA_TYPE_OCI_LAYER_GZIP;
        if (f->n_magic >= 4 && f->magic[0] == 0x28 && f->magic[1] == 0xb5 && f->magic[2] == 0x2f &&
            f->magic[3] == 0xfd)
                return MEDIA_TYPE_OCI_LAYER_ZSTD;
        return MEDIA_TYPE_OCI_LAYER;
}

static void add_descriptor(JsonBuilder *b, const char *media_type, const FileRef *f) {
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "mediaType");
        json_builder_add_string_value(b, media_type);
        json_builder_set_member_name(b, "digest");
        json_builder_add_string_value(b, f->digest);
        json_builder_set_member_name(b, "size");
        json_builder_add_int_value(b, (gint64) f->size);
        json_builder_end_object(b);
}

static const char *json_string(JsonNode *n) {
        if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
                return NULL;
        return json_node_get_string(n);
}

static int import_docker_image(Import *im, guint idx, JsonNode *node) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        _cleanup_json_node_ JsonNode *doc = NULL;
        _cleanup_free_ char *text = NULL;
        char digest[DIGEST_STRING_MAX];
        const FileRef *config;
        const char *config_path;
        JsonArray *layers, *tags = NULL;
        JsonObject *o;
        JsonNode *n;
        int r;

        if (!JSON_NODE_HOLDS_OBJECT(node))
                return archive_report_error(im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                            "manifest.json entry %u is not an object", idx);
        o = json_node_get_object(node);
        config_path = json_string(json_object_get_member(o, "Config"));
        n = json_object_get_member(o, "Layers");
        if (!config_path || !n || !JSON_NODE_HOLDS_ARRAY(n))
                return archive_report_error(im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                            "manifest.json entry %u lacks Config or Layers", idx);
        layers = json_node_get_array(n);
        if (json_array_get_length(layers) > LAYERS_MAX)
                return archive_report_error(im->rep, BERTH_ERROR_LIMIT, E2BIG,
                                            "manifest.json entry %u has more than %u layers", idx,
                                            LAYERS_MAX);
        n = json_object_get_member(o, "RepoTags");
        if (n && JSON_NODE_HOLDS_ARRAY(n))
                tags = json_node_get_array(n);
        else if (n && !JSON_NODE_HOLDS_NULL(n))
                return archive_report_error(im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                            "manifest.json entry %u: RepoTags must be an array", idx);

        config = lookup_file(im, config_path);
        if (!config)
                return archive_report_error(
                        im->rep, BERTH_ERROR_NOT_FOUND, ENOENT,
                        "manifest.json names the config '%.200s', which the archive does not hold",
                        config_path);
        if (config->size > CONFIG_SIZE_MAX)
                return archive_report_error(im->rep, BERTH_ERROR_LIMIT, EFBIG,
                                            "Config '%.200s' is too large", config_path);

        /* The OCI manifest docker save does not write (docker itself synthesises the same on push). */
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "schemaVersion");
        json_builder_add_int_value(b, 2);
        json_builder_set_member_name(b, "mediaType");
        json_builder_add_string_value(b, MEDIA_TYPE_OCI_MANIFEST);
        json_builder_set_member_name(b, "config");
        add_descriptor(b, MEDIA_TYPE_OCI_CONFIG, config);
        json_builder_set_member_name(b, "layers");
        json_builder_begin_array(b);
        for (guint i = 0; i < json_array_get_length(layers); i++) {
                const char *lp = json_string(json_array_get_element(layers, i));
                const FileRef *f = lp ? lookup_file(im, lp) : NULL;

                if (!f)
                        return archive_report_error(
                                im->rep, BERTH_ERROR_NOT_FOUND, ENOENT,
                                "manifest.json names the layer '%.200s', which the archive does not hold "
                                "(or only as a link leaving it)",
                                strna(lp));
                add_descriptor(b, layer_media_type(f), f);
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
        doc = json_builder_get_root(b);
        text = json_to_string_compact(doc);
        if (!text)
                return -ENOMEM;
        r = digest_buffer(DIGEST_SHA256, text, strlen(text), digest);
        if (r < 0)
                return r;
        r = content_store_write_buffer(im->store, digest, text, strlen(text), NULL);
        if (r < 0)
                return archive_report_error(im->rep, BERTH_ERROR_IO, r,
                                            "Failed to store the manifest of image %u: %s", idx,
                                            strerror(-r));

        if (!tags || json_array_get_length(tags) == 0)
                return add_image(im, "", digest, MEDIA_TYPE_OCI_MANIFEST, strlen(text));
        for (guint i = 0; i < json_array_get_length(tags); i++) {
                const char *tag = json_string(json_array_get_element(tags, i));

                if (!tag)
                        return archive_report_error(im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                                    "manifest.json entry %u: RepoTags must hold strings",
                                                    idx);
                r = add_image(im, tag, digest, MEDIA_TYPE_OCI_MANIFEST, strlen(text));
                if (r < 0)
                        return r;
        }
        return 0;
}

static int import_docker_save(Import *im) {
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_free_ char *msg = NULL;
        JsonArray *l;
        int r;

        r = json_parse_bounded(im->manifest_json, im->manifest_size, MANIFEST_SIZE_MAX, &root, &msg);
        if (r < 0)
                return archive_report_error(im->rep, BERTH_ERROR_BAD_CONTENT, r, "Invalid manifest.json: %s",
                                            strna(msg));
        if (!JSON_NODE_HOLDS_ARRAY(root))
                return archive_report_error(im->rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                            "manifest.json must be an array");
        l = json_node_get_array(root);
        if (json_array_get_length(l) > ARCHIVE_IMAGES_MAX)
                return archive_report_error(im->rep, BERTH_ERROR_LIMIT, E2BIG,
                                            "manifest.json lists more than %u images", ARCHIVE_IMAGES_MAX);
        for (guint i = 0; i < json_array_get_length(l); i++) {
                r = import_docker_image(im, i, json_array_get_element(l, i));
                if (r < 0)
                        return r;
        }
        return 0;
}

static void free_archive(struct archive *a) {
        if (a)
                archive_read_free(a);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct archive *, free_archive);

int archive_import(ContentStore *store, int fd, ArchiveReport *rep) {
        _cleanup_(free_archivep) struct archive *a = NULL;
        _cleanup_free_ uint8_t *buf = NULL, *rbuf = NULL;
        g_autoptr(GHashTable) files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, free);
        g_autoptr(GHashTable) links = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        Import im = {
                .store = store, .rep = rep, .fd = fd, .files = files, .links = links, .images = rep->result
        };
        int r;

        buf = malloc(READ_BLOCK_SIZE);
        rbuf = malloc(READ_BLOCK_SIZE);
        a = archive_read_new();
        if (!buf || !rbuf || !a)
                return -ENOMEM;
        im.buf = buf;
        im.rbuf = rbuf;
        /* SECURITY: tar formats and the gzip/zstd filters only: no cpio, zip, iso9660 or external
         * decompressor programs behind a hostile stream. */
        if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
            archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
            archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
            archive_read_support_filter_none(a) != ARCHIVE_OK)
                return archive_report_error(rep, BERTH_ERROR_UNSUPPORTED, ENOTSUP,
                                            "libarchive lacks tar, gzip or zstd support: %s",
                                            strna(archive_error_string(a)));
        if (archive_read_open(a, &im, NULL, read_callback, NULL) != ARCHIVE_OK)
                return archive_report_error(rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                            "Not a readable tar archive: %s",
                                            archive_error_string(a) ?: "format error");

        json_builder_set_member_name(rep->result, "images");
        json_builder_begin_array(rep->result);
        r = read_entries(&im, a);
        if (r >= 0) {
                if (im.index_json)
                        r = import_oci_layout(&im); /* newer docker save writes both: the layout wins */
                else if (im.manifest_json)
                        r = import_docker_save(&im);
                else
                        r = archive_report_error(
                                rep, BERTH_ERROR_BAD_CONTENT, EBADMSG,
                                "Neither an OCI image layout (no index.json) nor a docker save archive "
                                "(no manifest.json)");
        }
        if (r >= 0 && im.n_images == 0)
                r = archive_report_error(rep, BERTH_ERROR_BAD_CONTENT, ENOENT,
                                         "The archive holds no images");
        free(im.index_json);
        free(im.manifest_json);
        if (r < 0)
                return r;
        json_builder_end_array(rep->result);
        log_debug("Imported %u entries, %" PRIu64 " bytes, %u image(s)", im.entries, im.total, im.n_images);
        return 0;
}

/* ---- ImportArchive(h archive, t flags) → a(ssst) ---------------------------------------------------- */

typedef struct ImportArgs {
        ContentStore *store;
        int fd;
} ImportArgs;

static int import_child(void *userdata, ArchiveReport *rep) {
        ImportArgs *args = userdata;

        return archive_import(args->store, args->fd, rep);
}

static bool media_type_ok(const char *s) {
        MediaKind k = media_type_kind(s);
        return k == MEDIA_KIND_MANIFEST || k == MEDIA_KIND_INDEX;
}

static int import_reply(sd_bus_message *call, JsonObject *result) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        JsonArray *images = json_object_get_array_or_null(result, "images");
        int r;

        if (!images || json_array_get_length(images) > ARCHIVE_IMAGES_MAX)
                return -EBADMSG;
        r = sd_bus_message_new_method_return(call, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ssst)");
        if (r < 0)
                return r;
        for (guint i = 0; i < json_array_get_length(images); i++) {
                JsonNode *n = json_array_get_element(images, i);
                const char *name, *digest, *mt;
                gint64 size;
                JsonObject *o;

                if (!JSON_NODE_HOLDS_OBJECT(n))
                        return -EBADMSG;
                o = json_node_get_object(n);
                name = json_object_get_string_member_with_default(o, "name", NULL);
                digest = json_object_get_string_member_with_default(o, "digest", NULL);
                mt = json_object_get_string_member_with_default(o, "media_type", NULL);
                size = json_object_get_int_member_with_default(o, "size", -1);
                /* The child read hostile bytes: its report is checked like any other input. */
                if (!name || strlen(name) > REFERENCE_LENGTH_MAX || !g_utf8_validate(name, -1, NULL) ||
                    !digest || !digest_is_valid(digest) || !mt || !media_type_ok(mt) || size < 0 ||
                    (uint64_t) size > MANIFEST_SIZE_MAX)
                        return -EBADMSG;
                r = sd_bus_message_append(reply, "(ssst)", name, digest, mt, (uint64_t) size);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        log_info("Imported an archive: %u image(s).", json_array_get_length(images));
        return sd_bus_send(NULL, reply, NULL);
}

int method_import_archive(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        ArchiveContext *ctx = userdata;
        ImportArgs args = { .store = ctx->store };
        uint64_t flags;
        struct stat st;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "ht", &args.fd, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        if (fstat(args.fd, &st) < 0)
                return sd_bus_error_set_errnof(error, errno, "Cannot stat the archive descriptor: %m");
        if (S_ISDIR(st.st_mode))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "The archive descriptor is a directory");
        log_info("Importing an archive (%s).", S_ISREG(st.st_mode) ? "file" : "stream");
        return archive_job_spawn(ctx, msg, args.fd, import_child, &args, import_reply, error);
}
