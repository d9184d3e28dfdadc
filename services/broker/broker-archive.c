/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

#include "berth-limits.h"
#include "broker.h"
#include "bus-names.h"
#include "bus-util.h"
#include "digest.h"
#include "image-store.h"
#include "json-util.h"
#include "log.h"
#include "oci-ref.h"
#include "oci-types.h"
#include "pull.h"

/* ImportImage and ExportImage: image archives travel as file descriptors the caller opened (no service
 * ever opens a path a user gave). The fetcher reads and writes them (it owns the content store, and an
 * archive is as hostile as a registry); the broker decides names, records images exactly as a pull does
 * (pull.c's verification and record code) and builds the index.json of an export. */

/* ImportImage flag bit 0: record only; do not start unpacking the imported images. */
#define IMPORT_FLAG_NO_UNPACK (UINT64_C(1) << 0)
#define IMPORT_FLAGS_ALL IMPORT_FLAG_NO_UNPACK

#define ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"
#define ANNOTATION_CONTAINERD_NAME "io.containerd.image.name"

static unsigned n_imports_running;
static GHashTable *exports_per_uid; /* uid → running ExportImage calls (GUINT_TO_POINTER both) */

typedef struct ArchiveCall {
        Manager *manager;
        sd_bus_message *request;
        char *name_arg; /* ImportImage's name argument ("" = none) */
        uid_t uid;
        uint64_t flags;
} ArchiveCall;

static void archive_call_free(ArchiveCall *c) {
        if (!c)
                return;
        sd_bus_message_unref(c->request);
        free(c->name_arg);
        free(c);
}

static ArchiveCall *archive_call_new(Manager *m, sd_bus_message *request, const char *name_arg, uid_t uid) {
        ArchiveCall *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        *c = (ArchiveCall) { .manager = m, .request = sd_bus_message_ref(request), .name_arg = strdup(name_arg ?: ""),
                             .uid = uid };
        if (!c->name_arg) {
                archive_call_free(c);
                return NULL;
        }
        return c;
}

static const char *detail(const char *s) {
        return strlen(s) <= BUS_STRING_MAX ? s : "";
}

/* The normalised spelling of a reference, or -EINVAL with a message. Digest-pinned names are refused:
 * a name we record is always a tag. */
static int normalise(const char *s, char **ret, char **ret_msg) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        int r;

        if (strlen(s) > REFERENCE_LENGTH_MAX)
                return json_set_error(ret_msg, EINVAL, "longer than %u bytes", REFERENCE_LENGTH_MAX);
        r = image_reference_parse(s, &ref, ret_msg);
        if (r < 0)
                return r;
        if (ref->digest)
                return json_set_error(ret_msg, EINVAL, "an image name cannot carry a digest");
        *ret = image_reference_to_string(ref);
        return *ret ? 0 : -ENOMEM;
}

static bool has_explicit_tag(const char *s) {
        const char *slash = strrchr(s, '/');

        return strchr(slash ? slash : s, ':') || strchr(s, '@');
}

/* What the archive calls an image (a full reference, a bare tag, or nothing) plus --name → the
 * reference to record. A bare tag needs --name for the repository ("latest" + localhost/foo →
 * localhost/foo:latest; a --name with its own tag wins); an unnamed image takes --name as is. */
static int import_name(const char *raw, const char *name_arg, const char *digest, char **ret, sd_bus_error *error) {
        _cleanup_free_ char *joined = NULL, *msg = NULL;
        int r;

        if (isempty(raw)) {
                if (isempty(name_arg))
                        return sd_bus_error_setf(error, BERTH_ERROR_BAD_CONTENT,
                                                 "The archive gives image %s no name; name it with --name.", digest);
                r = normalise(name_arg, ret, &msg);
        } else if (!strpbrk(raw, "/:@")) {
                if (isempty(name_arg))
                        return sd_bus_error_setf(error, BERTH_ERROR_BAD_CONTENT,
                                                 "The archive names image %s only by the tag '%.128s'; give the repository "
                                                 "with --name.",
                                                 digest, raw);
                if (has_explicit_tag(name_arg))
                        r = normalise(name_arg, ret, &msg);
                else if (asprintf(&joined, "%s:%s", name_arg, raw) < 0)
                        return -ENOMEM;
                else
                        r = normalise(joined, ret, &msg);
        } else
                r = normalise(raw, ret, &msg);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_REFERENCE, "Invalid image name '%.200s' for %s: %s",
                                         joined ?: (!isempty(raw) && strpbrk(raw, "/:@") ? raw : name_arg), digest,
                                         msg ?: "malformed");
        return 0;
}

/* ---- synchronous reads from the fetcher's store ------------------------------------------------------- */

/* OpenBlob and ListBlobs answer from the fetcher's local store at once (its archive and download work
 * runs elsewhere), so recording an import's images calls them synchronously. */
static int fetcher_call(Manager *m, const char *member, sd_bus_message **reply, sd_bus_error *e, const char *types,
                        ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        va_list ap;
        int r;

        va_start(ap, types);
        r = bus_message_new_method_callv(m->bus, &call, BERTH_FETCHER_NAME, BERTH_FETCHER_PATH, BERTH_FETCHER_IFACE,
                                         member, types, ap);
        va_end(ap);
        if (r < 0)
                return r;
        return sd_bus_call(m->bus, call, BUS_INTERNAL_TIMEOUT_USEC, e, reply);
}

static int load_document(Manager *m, const char *digest, uint64_t size, uint64_t max, char **ret, char **ret_msg) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_bus_error_ sd_bus_error e = SD_BUS_ERROR_NULL;
        uint64_t have;
        int fd, r;

        r = fetcher_call(m, "OpenBlob", &reply, &e, "s", digest);
        if (r < 0)
                return json_set_error(ret_msg, -r == ENOENT ? ENOENT : -r, "Cannot open '%s': %s", digest,
                                      e.message ?: strerror(-r));
        r = sd_bus_message_read(reply, "ht", &fd, &have);
        if (r < 0)
                return json_set_error(ret_msg, EBADMSG, "Malformed OpenBlob reply for '%s'", digest);
        /* SECURITY: read_verified() re-hashes: the fetcher's (and the archive's) word is not enough. */
        return pull_read_verified(fd, digest, size, max, ret, ret_msg);
}

static int list_blobs(Manager *m, GHashTable *blobs, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_bus_error_ sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = fetcher_call(m, "ListBlobs", &reply, &e, NULL);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_SERVICE_UNAVAILABLE, "Listing the content store failed: %s",
                                         e.message ?: strerror(-r));
        r = sd_bus_message_enter_container(reply, 'a', "(stt)");
        for (;;) {
                const char *digest;
                uint64_t size, mtime;
                uint64_t *v;

                if (r < 0)
                        return r;
                r = sd_bus_message_read(reply, "(stt)", &digest, &size, &mtime);
                if (r <= 0)
                        break;
                if (!digest_is_valid(digest))
                        return -EBADMSG;
                v = g_new(uint64_t, 1);
                *v = size;
                g_hash_table_replace(blobs, g_strdup(digest), v);
        }
        return r;
}

/* The pull's steps 2–4 and 6 for an image whose blobs are already in the store: re-hash and parse the
 * top document, pick this machine's platform from an index, re-hash and parse manifest and config, the
 * same checks, every layer present with its size, then the same record. */
static int build_record(Manager *m, const char *name, const char *digest, const char *media_type, uint64_t size,
                        GHashTable *blobs, Image **ret, char **ret_msg) {
        _cleanup_(oci_index_freep) OciIndex *index = NULL;
        _cleanup_(oci_manifest_freep) OciManifest *mf = NULL;
        _cleanup_(oci_image_config_freep) OciImageConfig *config = NULL;
        _cleanup_free_ char *data = NULL, *mdata = NULL, *cdata = NULL;
        const char *mdigest = digest, *mtype = media_type;
        const Platform *index_platform = NULL;
        uint64_t msize = size;
        Platform want = {};
        int r;

        r = load_document(m, digest, size, MANIFEST_SIZE_MAX, &data, ret_msg);
        if (r < 0)
                return r;
        if (media_type_kind(media_type) == MEDIA_KIND_INDEX) {
                const Descriptor *d = NULL;

                r = oci_index_parse(data, size, media_type, &index, ret_msg);
                if (r < 0)
                        {
                        json_prefix_error(ret_msg, "Invalid index '%s'", digest);
                        return r;
                }
                r = platform_default(&want);
                if (r < 0)
                        return r;
                r = oci_index_select(index, &want, &d, ret_msg);
                platform_done(&want);
                if (r < 0)
                        return r;
                if (media_type_kind(d->media_type) != MEDIA_KIND_MANIFEST)
                        return json_set_error(ret_msg, EMEDIUMTYPE, "Nested indexes are not supported ('%s')", d->digest);
                mdigest = d->digest;
                mtype = d->media_type;
                msize = d->size;
                index_platform = d->has_platform && d->platform.os ? &d->platform : NULL;
                r = load_document(m, mdigest, msize, MANIFEST_SIZE_MAX, &mdata, ret_msg);
                if (r < 0)
                        return r;
        }
        r = oci_manifest_parse(mdata ?: data, msize, mtype, &mf, ret_msg);
        if (r < 0)
                {
                        json_prefix_error(ret_msg, "Invalid manifest '%s'", mdigest);
                        return r;
                }
        r = pull_check_manifest(mf, mdigest, ret_msg);
        if (r < 0)
                return r;
        r = load_document(m, mf->config.digest, mf->config.size, CONFIG_SIZE_MAX, &cdata, ret_msg);
        if (r < 0)
                return r;
        r = oci_image_config_parse(cdata, mf->config.size, &config, ret_msg);
        if (r < 0)
                {
                        json_prefix_error(ret_msg, "Invalid image config '%s'", mf->config.digest);
                        return r;
                }
        r = pull_check_config(mf, mdigest, config, ret_msg);
        if (r < 0)
                return r;
        for (size_t l = 0; l < mf->n_layers; l++) {
                const uint64_t *have = g_hash_table_lookup(blobs, mf->layers[l].digest);

                if (!have)
                        return json_set_error(ret_msg, ENOENT, "Layer '%s' of '%s' is neither in the archive nor in the content store",
                                              mf->layers[l].digest, name);
                if (*have != mf->layers[l].size)
                        return json_set_error(ret_msg, EBADMSG, "Layer '%s' is stored with %" PRIu64 " bytes, the manifest says %" PRIu64,
                                              mf->layers[l].digest, *have, mf->layers[l].size);
        }
        return pull_build_image_record(m, name, digest, media_type, size, mdigest, mtype, msize, index_platform, mf,
                                       config, ret);
}

/* ---- ImportImage ------------------------------------------------------------------------------------- */

typedef struct Imported {
        char *name;
        char *digest;
        char *media_type;
        uint64_t size;
} Imported;

static void imported_free(gpointer p) {
        Imported *i = p;

        free(i->name);
        free(i->digest);
        free(i->media_type);
        free(i);
}

static void image_free_notify(gpointer p) {
        image_free(p);
}

static int import_finish(ArchiveCall *c, sd_bus_message *m, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(imported_free);
        g_autoptr(GPtrArray) records = g_ptr_array_new_with_free_func(image_free_notify);
        g_autoptr(GHashTable) blobs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        size_t added = 0;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "(ssst)");
        if (r < 0)
                return r;
        for (;;) {
                const char *raw, *digest, *media_type;
                _cleanup_free_ char *name = NULL;
                MediaKind kind;
                uint64_t size;
                Imported *i;

                r = sd_bus_message_read(m, "(ssst)", &raw, &digest, &media_type, &size);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                /* The fetcher's report is checked like everything else it says. */
                kind = media_type_kind(media_type);
                if (!digest_is_valid(digest) || (kind != MEDIA_KIND_MANIFEST && kind != MEDIA_KIND_INDEX) ||
                    size > MANIFEST_SIZE_MAX || list->len >= ARCHIVE_IMAGES_MAX)
                        return sd_bus_error_setf(error, BERTH_ERROR_SERVICE_UNAVAILABLE,
                                                 "The fetcher's import report is malformed.");
                r = import_name(raw, c->name_arg, digest, &name, error);
                if (r < 0)
                        return r;
                for (guint k = 0; k < list->len; k++) {
                        Imported *o = list->pdata[k];

                        if (streq(o->name, name) && !streq(o->digest, digest))
                                return sd_bus_error_setf(error, BERTH_ERROR_BAD_CONTENT,
                                                         "The archive names two different images '%s' (%s and %s).", name,
                                                         o->digest, digest);
                }
                i = calloc(1, sizeof(*i));
                if (!i)
                        return -ENOMEM;
                *i = (Imported) { .name = TAKE_PTR(name), .digest = strdup(digest), .media_type = strdup(media_type),
                                  .size = size };
                g_ptr_array_add(list, i);
                if (!i->digest || !i->media_type)
                        return -ENOMEM;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;

        r = list_blobs(c->manager, blobs, error);
        if (r < 0)
                return r;
        /* Everything is checked before anything is recorded: an archive imports whole or not at all. */
        for (guint k = 0; k < list->len; k++) {
                Imported *i = list->pdata[k];
                _cleanup_free_ char *msg = NULL;
                Image *img = NULL;

                bool dup = false;

                for (guint o = 0; o < k; o++)
                        dup = dup || streq(i->name, ((Imported *) list->pdata[o])->name);
                if (dup)
                        continue; /* the same (name, digest) twice */
                r = build_record(c->manager, i->name, i->digest, i->media_type, i->size, blobs, &img, &msg);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return sd_bus_error_setf(error, r == -ENOENT ? BERTH_ERROR_NOT_FOUND : BERTH_ERROR_BAD_CONTENT,
                                                 "Cannot import '%s': %s", i->name, msg ?: strerror(-r));
                if (!image_store_get(c->manager->images, i->name))
                        added++;
                g_ptr_array_add(records, img);
        }
        if (image_store_count(c->manager->images) + added > IMAGES_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "Too many images (limit %u).", IMAGES_MAX);

        r = sd_bus_message_new_method_return(c->request, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ss)");
        if (r < 0)
                return r;
        for (guint k = 0; k < records->len; k++) {
                Image *img = records->pdata[k];
                _cleanup_free_ char *name = strdup(img->name), *digest = strdup(img->target_digest);

                if (!name || !digest)
                        return -ENOMEM;
                records->pdata[k] = NULL;
                r = image_store_put(c->manager->images, &img);
                image_free(img);
                if (r < 0) {
                        log_error_errno(r, "Failed to write the image record of '%s': %m", name);
                        return sd_bus_error_setf(error, BERTH_ERROR_IO, "Failed to save '%s': %s", name, strerror(-r));
                }
                log_info("Imported '%s' (%s) for uid %u.", name, digest, (unsigned) c->uid);
                r = sd_bus_message_append(reply, "(ss)", name, digest);
                if (r < 0)
                        return r;
                /* Like ctr images import: unpack this machine's platform, as a transfer of the importer's
                 * (UnpackImage of the same name joins it). An image without that platform stays packed. */
                if (!(c->flags & IMPORT_FLAG_NO_UNPACK)) {
                        _cleanup_bus_error_ sd_bus_error ue = SD_BUS_ERROR_NULL;
                        const char *path = NULL;

                        r = broker_start_unpack(c->manager, c->uid, name, "", &path, &ue);
                        if (r < 0)
                                log_info("Not unpacking imported '%s': %s", name, ue.message ?: strerror(-r));
                }
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int on_import_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        ArchiveCall *c = userdata;
        int r;

        n_imports_running--;
        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);

                log_error("Import failed: %s", e && e->message ? e->message : "unknown error");
                (void) broker_reply_internal_error(c->request, e, "Importing the archive");
        } else {
                r = import_finish(c, m, &error);
                if (r < 0) {
                        log_error("Import failed: %s", error.message ?: strerror(-r));
                        (void) bus_reply_errno(c->request, r, &error);
                }
        }
        archive_call_free(c);
        return 0;
}

static int import_image_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_free_ char *normalised = NULL, *msg = NULL;
        Manager *manager = userdata;
        const char *name;
        ArchiveCall *c;
        uint64_t flags;
        struct stat st;
        uid_t uid;
        int fd, r;

        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "hst", &fd, &name, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, IMPORT_FLAGS_ALL, error);
        if (r < 0)
                return r;
        if (!isempty(name) && normalise(name, &normalised, &msg) < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_REFERENCE, "Invalid name '%.200s': %s", name,
                                         msg ?: "malformed");
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "The archive descriptor is a directory.");
        r = bus_message_sender_uid(m, &uid);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED, "Cannot establish the caller's identity.");
        if (n_imports_running >= TRANSFERS_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "Too many imports running (limit %u).", TRANSFERS_MAX);

        c = archive_call_new(manager, m, name, uid);
        if (!c)
                return -ENOMEM;
        c->flags = flags;
        r = sd_bus_message_new_method_call(manager->bus, &call, BERTH_FETCHER_NAME, BERTH_FETCHER_PATH,
                                           BERTH_FETCHER_IFACE, "ImportArchive");
        if (r >= 0)
                r = sd_bus_message_append(call, "ht", fd, UINT64_C(0));
        /* An archive may be large or arrive slowly through a pipe: the fetcher's stall guard bounds it. */
        if (r >= 0)
                r = sd_bus_call_async(manager->bus, NULL, call, on_import_reply, c, ARCHIVE_CALL_TIMEOUT_USEC);
        if (r < 0) {
                archive_call_free(c);
                return sd_bus_error_setf(error, BERTH_ERROR_SERVICE_UNAVAILABLE, "Cannot reach the berth fetcher: %s",
                                         strerror(-r));
        }
        n_imports_running++;
        log_info("Importing an archive%s%s for uid %u.", isempty(name) ? "" : " as ", normalised ?: "",
                 (unsigned) uid);
        return 1;
}

int method_import_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *name;
        uint64_t flags;
        int fd, r;

        r = sd_bus_message_read(m, "hst", &fd, &name, &flags);
        if (r < 0)
                return r;
        const char *details[] = { "name", detail(name), NULL };
        return broker_authorize(m, details, import_image_authorized, userdata, error);
}

/* ---- ExportImage ------------------------------------------------------------------------------------- */

static void export_count(uid_t uid, int delta) {
        gpointer key = GUINT_TO_POINTER((unsigned) uid);
        unsigned n;

        if (!exports_per_uid)
                exports_per_uid = g_hash_table_new(g_direct_hash, g_direct_equal);
        n = GPOINTER_TO_UINT(g_hash_table_lookup(exports_per_uid, key)) + (unsigned) delta;
        if (n == 0)
                g_hash_table_remove(exports_per_uid, key);
        else
                g_hash_table_insert(exports_per_uid, key, GUINT_TO_POINTER(n));
}

static unsigned export_running(uid_t uid) {
        return exports_per_uid ? GPOINTER_TO_UINT(g_hash_table_lookup(exports_per_uid, GUINT_TO_POINTER((unsigned) uid))) : 0;
}

/* index.json names only the OCI types: skopeo's oci transport skips entries of any other type (the blob
 * keeps its own Docker type, which readers sniff). */
static const char *index_media_type(const char *t) {
        if (streq(t, MEDIA_TYPE_DOCKER_MANIFEST))
                return MEDIA_TYPE_OCI_MANIFEST;
        if (streq(t, MEDIA_TYPE_DOCKER_LIST))
                return MEDIA_TYPE_OCI_INDEX;
        return t;
}

static char *build_index_json(const Image *i) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        _cleanup_json_node_ JsonNode *root = NULL;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "schemaVersion");
        json_builder_add_int_value(b, 2);
        json_builder_set_member_name(b, "mediaType");
        json_builder_add_string_value(b, MEDIA_TYPE_OCI_INDEX);
        json_builder_set_member_name(b, "manifests");
        json_builder_begin_array(b);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "mediaType");
        json_builder_add_string_value(b, index_media_type(i->target_media_type));
        json_builder_set_member_name(b, "digest");
        json_builder_add_string_value(b, i->target_digest);
        json_builder_set_member_name(b, "size");
        json_builder_add_int_value(b, (gint64) i->target_size);
        json_builder_set_member_name(b, "annotations");
        json_builder_begin_object(b);
        /* containerd names the image by its annotation; the OCI one carries the full reference too, so
         * `skopeo copy oci-archive:FILE` and `ctr images import` both keep the name. */
        json_builder_set_member_name(b, ANNOTATION_CONTAINERD_NAME);
        json_builder_add_string_value(b, i->name);
        json_builder_set_member_name(b, ANNOTATION_REF_NAME);
        json_builder_add_string_value(b, i->name);
        json_builder_end_object(b);
        json_builder_end_object(b);
        json_builder_end_array(b);
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        return json_to_string_compact(root);
}

static void add_digest(GPtrArray *l, const char *d) {
        for (guint k = 0; k < l->len; k++)
                if (streq(l->pdata[k], d))
                        return;
        g_ptr_array_add(l, (char *) d);
}

static int on_export_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        ArchiveCall *c = userdata;
        uint64_t bytes = 0;
        int r;

        export_count(c->uid, -1);
        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);

                log_error("Export of '%s' failed: %s", c->name_arg, e && e->message ? e->message : "unknown error");
                (void) broker_reply_internal_error(c->request, e, "Exporting the image");
        } else {
                r = sd_bus_message_read(m, "t", &bytes);
                if (r < 0)
                        (void) sd_bus_reply_method_errorf(c->request, BERTH_ERROR_SERVICE_UNAVAILABLE,
                                                          "Malformed ExportArchive reply.");
                else {
                        log_info("Exported '%s' (%" PRIu64 " bytes) for uid %u.", c->name_arg, bytes, (unsigned) c->uid);
                        (void) sd_bus_reply_method_return(c->request, "");
                }
        }
        archive_call_free(c);
        return 0;
}

static int export_image_authorized(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        g_autoptr(GPtrArray) digests = g_ptr_array_new();
        _cleanup_free_ char *name = NULL, *msg = NULL, *index_json = NULL;
        Manager *manager = userdata;
        const char *reference;
        ArchiveCall *c;
        uint64_t flags;
        struct stat st;
        Image *i;
        uid_t uid;
        int fd, r;

        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "sht", &reference, &fd, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        if (normalise(reference, &name, &msg) < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_REFERENCE, "Invalid reference '%.200s': %s", reference,
                                         msg ?: "malformed");
        i = image_store_get(manager->images, name);
        if (!i)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No image '%s'.", name);
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "The output descriptor is a directory.");
        r = bus_message_sender_uid(m, &uid);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED, "Cannot establish the caller's identity.");
        if (export_running(uid) >= ARCHIVE_EXPORTS_PER_USER_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "Too many exports of yours running (limit %u).",
                                         ARCHIVE_EXPORTS_PER_USER_MAX);

        /* Everything the record references: the target, and per platform held its manifest, config and
         * layers. An index's other platforms are not ours to export (we never fetched them). */
        add_digest(digests, i->target_digest);
        for (size_t p = 0; p < i->n_platforms; p++) {
                const ImagePlatform *ip = &i->platforms[p];

                add_digest(digests, ip->manifest_digest);
                add_digest(digests, ip->config_digest);
                for (size_t l = 0; l < ip->n_layers; l++)
                        add_digest(digests, ip->layers[l].digest);
        }
        g_ptr_array_add(digests, NULL);
        index_json = build_index_json(i);
        if (!index_json)
                return -ENOMEM;

        c = archive_call_new(manager, m, name, uid);
        if (!c)
                return -ENOMEM;
        c->flags = flags;
        r = sd_bus_message_new_method_call(manager->bus, &call, BERTH_FETCHER_NAME, BERTH_FETCHER_PATH,
                                           BERTH_FETCHER_IFACE, "ExportArchive");
        if (r >= 0)
                r = sd_bus_message_append(call, "hs", fd, index_json);
        if (r >= 0)
                r = sd_bus_message_append_strv(call, (char **) digests->pdata);
        if (r >= 0)
                r = sd_bus_call_async(manager->bus, NULL, call, on_export_reply, c, ARCHIVE_CALL_TIMEOUT_USEC);
        if (r < 0) {
                archive_call_free(c);
                return sd_bus_error_setf(error, BERTH_ERROR_SERVICE_UNAVAILABLE, "Cannot reach the berth fetcher: %s",
                                         strerror(-r));
        }
        export_count(uid, +1);
        log_info("Exporting '%s' (%u blobs) for uid %u.", name, digests->len - 1, (unsigned) uid);
        return 1;
}

int method_export_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *reference;
        uint64_t flags;
        int fd, r;

        r = sd_bus_message_read(m, "sht", &reference, &fd, &flags);
        if (r < 0)
                return r;
        const char *details[] = { "reference", detail(reference), NULL };
        return broker_authorize(m, details, export_image_authorized, userdata, error);
}
