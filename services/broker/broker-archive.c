/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

#include "berth-flags.h"
#include "berth-limits.h"
#include "broker.h"
#include "bus-names.h"
#include "bus-error.h"
#include "bus-util.h"
#include "digest.h"
#include "fetcher-client.h"
#include "image-record.h"
#include "image-store.h"
#include "image-verify.h"
#include "json-util.h"
#include "log.h"
#include "oci-ref.h"
#include "oci-types.h"

/* ImportImage and ExportImage: image archives travel as file descriptors the caller opened (no service
 * ever opens a path a user gave). The fetcher reads and writes them (it owns the content store, and an
 * archive is as hostile as a registry); the broker decides names, records images exactly as a pull does
 * (pull.c's verification and record code) and builds the index.json of an export. */

#define ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"
#define ANNOTATION_CONTAINERD_NAME "io.containerd.image.name"

static unsigned n_imports_running;
static GHashTable *exports_per_uid; /* uid → running ExportImage calls (GUINT_TO_POINTER both) */

/* Which document of the image being verified an OpenBlob call brings. */
typedef enum ImportStep {
        IMPORT_TOP,      /* what the archive names: an index or a manifest */
        IMPORT_MANIFEST, /* the manifest an index entry points to */
        IMPORT_CONFIG,
} ImportStep;

typedef struct ArchiveCall {
        Manager *manager;
        sd_bus_message *request;
        char *name_arg; /* ImportImage's name argument ("" = none) */
        uid_t uid;
        uint64_t flags;

        /* ImportImage, once the fetcher has stored the archive: every image is verified (one OpenBlob
         * call after the other), then all are recorded at once. */
        GPtrArray *imported; /* Imported*: what the archive names */
        GHashTable *blobs;   /* digest → uint64_t size: the content store */
        GPtrArray *records;  /* Image*: verified, not yet recorded */
        guint next;          /* the entry of imported being verified */
        ImportStep step;
        const char *want_digest; /* the document OpenBlob brings (borrowed from the fields below) */
        uint64_t want_size, want_max;
        OciIndex *index;
        OciManifest *manifest;
        OciImageConfig *config;
        const Descriptor *entry; /* the index entry picked (borrowed from index), NULL without an index */
} ArchiveCall;

static void import_image_state_clear(ArchiveCall *c) {
        c->index = oci_index_free(c->index);
        c->manifest = oci_manifest_free(c->manifest);
        c->config = oci_image_config_free(c->config);
        c->entry = NULL;
        c->want_digest = NULL;
}

static void archive_call_free(ArchiveCall *c) {
        if (!c)
                return;
        sd_bus_message_unref(c->request);
        free(c->name_arg);
        import_image_state_clear(c);
        if (c->imported)
                g_ptr_array_unref(c->imported);
        if (c->blobs)
                g_hash_table_destroy(c->blobs);
        if (c->records)
                g_ptr_array_unref(c->records);
        free(c);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(ArchiveCall *, archive_call_free);

static ArchiveCall *archive_call_new(Manager *m, sd_bus_message *request, const char *name_arg, uid_t uid) {
        ArchiveCall *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        *c = (ArchiveCall){ .manager = m,
                            .request = sd_bus_message_ref(request),
                            .name_arg = strdup(name_arg ?: ""),
                            .uid = uid };
        if (!c->name_arg) {
                archive_call_free(c);
                return NULL;
        }
        return c;
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
 * localhost/foo:latest; a --name with its own tag wins); an unnamed image takes --name as is.
 * SECURITY: an explicit --name also wins over a full name the archive gives (ctr keeps the archive's):
 * the caller's word beats bytes from an archive they may not have read, which could otherwise name
 * itself docker.io/library/debian:latest and replace that image for every user. One --name cannot
 * name two different images: import_read_report() refuses that. */
static int import_name(const char *raw, const char *name_arg, const char *digest, char **ret,
                       sd_bus_error *error) {
        _cleanup_free_ char *joined = NULL, *msg = NULL;
        int r;

        if (isempty(raw)) {
                if (isempty(name_arg))
                        return sd_bus_error_setf(error, BERTH_ERROR_BAD_CONTENT,
                                                 "The archive gives image %s no name; name it with --name.",
                                                 digest);
                r = normalise(name_arg, ret, &msg);
        } else if (!strpbrk(raw, "/:@")) {
                if (isempty(name_arg))
                        return sd_bus_error_setf(
                                error, BERTH_ERROR_BAD_CONTENT,
                                "The archive names image %s only by the tag '%.128s'; give the repository "
                                "with --name.",
                                digest, raw);
                if (has_explicit_tag(name_arg))
                        r = normalise(name_arg, ret, &msg);
                else if (asprintf_safe(&joined, "%s:%s", name_arg, raw) < 0)
                        return -ENOMEM;
                else
                        r = normalise(joined, ret, &msg);
        } else if (!isempty(name_arg))
                r = normalise(name_arg, ret, &msg);
        else
                r = normalise(raw, ret, &msg);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_REFERENCE,
                                         "Invalid image name '%.200s' for %s: %s",
                                         joined ?: (!isempty(raw) && strpbrk(raw, "/:@") ? raw : name_arg),
                                         digest, msg ?: "malformed");
        return 0;
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

/* Ends an import with an error (set in error, or the errno) and frees c. */
static void import_fail(ArchiveCall *c, int r, const sd_bus_error *error) {
        log_error("Import failed: %s", error && error->message ? error->message : strerror(-r));
        (void) bus_reply_errno(c->request, r, (sd_bus_error *) error);
        archive_call_free(c);
}

/* An image of the archive failed verification (msg says why): the whole import fails. */
static void import_fail_image(ArchiveCall *c, int r, const char *msg) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        const Imported *i = c->imported->pdata[c->next];

        if (r != -ENOMEM)
                (void) sd_bus_error_setf(&error,
                                         r == -ENOENT ? BERTH_ERROR_NOT_FOUND : BERTH_ERROR_BAD_CONTENT,
                                         "Cannot import '%s': %s", i->name, msg ?: strerror(-r));
        import_fail(c, r, &error);
}

/* Reads the fetcher's report of what the archive holds into c->imported, checking it like everything
 * else the fetcher says, and derives the name of each image. */
static int import_read_report(ArchiveCall *c, sd_bus_message *m, sd_bus_error *error) {
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
                kind = media_type_kind(media_type);
                if (!digest_is_valid(digest) || (kind != MEDIA_KIND_MANIFEST && kind != MEDIA_KIND_INDEX) ||
                    size > MANIFEST_SIZE_MAX || c->imported->len >= ARCHIVE_IMAGES_MAX)
                        return sd_bus_error_setf(error, BERTH_ERROR_SERVICE_UNAVAILABLE,
                                                 "The fetcher's import report is malformed.");
                r = import_name(raw, c->name_arg, digest, &name, error);
                if (r < 0)
                        return r;
                bool seen = false;
                for (guint k = 0; k < c->imported->len; k++) {
                        Imported *o = c->imported->pdata[k];

                        if (streq(o->name, name) && !streq(o->digest, digest))
                                return sd_bus_error_setf(
                                        error, BERTH_ERROR_BAD_CONTENT,
                                        isempty(c->name_arg)
                                                ? "The archive names two different images '%s' (%s and %s)."
                                                : "--name '%s' cannot name two different images (%s and "
                                                  "%s): import them without --name.",
                                        name, o->digest, digest);
                        seen = seen || streq(o->name, name); /* two RepoTags that --name replaced */
                }
                if (seen)
                        continue;
                i = calloc(1, sizeof(*i));
                if (!i)
                        return -ENOMEM;
                *i = (Imported){ .name = TAKE_PTR(name),
                                 .digest = strdup(digest),
                                 .media_type = strdup(media_type),
                                 .size = size };
                g_ptr_array_add(c->imported, i);
                if (!i->digest || !i->media_type)
                        return -ENOMEM;
        }
        return sd_bus_message_exit_container(m);
}

/* Records every verified image at once (an archive imports whole or not at all), replies with the
 * names and digests, and starts unpacking them unless asked not to. */
static int import_commit(ArchiveCall *c, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        size_t added = 0;
        int r;

        for (guint k = 0; k < c->records->len; k++)
                if (!image_store_get(c->manager->images, ((Image *) c->records->pdata[k])->name))
                        added++;
        if (image_store_count(c->manager->images) + added > IMAGES_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "Too many images (limit %u).",
                                         IMAGES_MAX);

        r = sd_bus_message_new_method_return(c->request, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ss)");
        if (r < 0)
                return r;
        for (guint k = 0; k < c->records->len; k++) {
                Image *img = c->records->pdata[k];
                _cleanup_free_ char *name = strdup(img->name), *digest = strdup(img->target_digest);

                if (!name || !digest)
                        return -ENOMEM;
                c->records->pdata[k] = NULL;
                r = image_store_put(c->manager->images, &img);
                image_free(img);
                if (r < 0) {
                        log_error_errno(r, "Failed to write the image record of '%s': %m", name);
                        return sd_bus_error_setf(error, BERTH_ERROR_IO, "Failed to save '%s': %s", name,
                                                 strerror(-r));
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

                        r = broker_start_unpack(c->manager, c->uid, name, "", c->request, &path, &ue);
                        if (r < 0)
                                log_info("Not unpacking imported '%s': %s", name,
                                         ue.message ?: strerror(-r));
                }
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* The pull's steps 2–4 and 6 for each image, whose blobs are already in the store: re-hash and parse the
 * top document, pick this machine's platform from an index, re-hash and parse manifest and config, the
 * same checks, every layer present with its size, then the same record. Each document comes from the
 * fetcher's store by an OpenBlob call: import_load() asks, on_import_blob() goes on with the next step. */

static void import_verify_next(ArchiveCall *c);
static int on_import_blob(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

static int import_load(ArchiveCall *c, ImportStep step, const char *digest, uint64_t size, uint64_t max) {
        c->step = step;
        c->want_digest = digest;
        c->want_size = size;
        c->want_max = max;
        return fetcher_call(c->manager, NULL, 0, on_import_blob, c, "OpenBlob", "s", digest);
}

/* The top document, when it is an index: pick this machine's platform, then load its manifest. */
static int import_index(ArchiveCall *c, const char *data, char **ret_msg) {
        const Imported *i = c->imported->pdata[c->next];
        _cleanup_(platform_done) Platform want = {};
        int r;

        r = oci_index_parse(data, i->size, i->media_type, &c->index, ret_msg);
        if (r < 0) {
                json_prefix_error(ret_msg, "Invalid index '%s'", i->digest);
                return r;
        }
        r = platform_default(&want);
        if (r < 0)
                return r;
        r = oci_index_select(c->index, &want, &c->entry, ret_msg);
        if (r < 0)
                return r;
        if (media_type_kind(c->entry->media_type) != MEDIA_KIND_MANIFEST)
                return json_set_error(ret_msg, EMEDIUMTYPE, "Nested indexes are not supported ('%s')",
                                      c->entry->digest);
        return import_load(c, IMPORT_MANIFEST, c->entry->digest, c->entry->size, MANIFEST_SIZE_MAX);
}

static int import_manifest(ArchiveCall *c, const char *data, char **ret_msg) {
        const Imported *i = c->imported->pdata[c->next];
        const char *mdigest = c->entry ? c->entry->digest : i->digest;
        int r;

        r = oci_manifest_parse(data, c->want_size, c->entry ? c->entry->media_type : i->media_type,
                               &c->manifest, ret_msg);
        if (r < 0) {
                json_prefix_error(ret_msg, "Invalid manifest '%s'", mdigest);
                return r;
        }
        r = image_check_manifest(c->manifest, mdigest, ret_msg);
        if (r < 0)
                return r;
        return import_load(c, IMPORT_CONFIG, c->manifest->config.digest, c->manifest->config.size,
                           CONFIG_SIZE_MAX);
}

static int import_config(ArchiveCall *c, const char *data, char **ret_msg) {
        const Imported *i = c->imported->pdata[c->next];
        const OciManifest *mf = c->manifest;
        const Descriptor *e = c->entry;
        Image *img = NULL;
        int r;

        r = oci_image_config_parse(data, mf->config.size, &c->config, ret_msg);
        if (r < 0) {
                json_prefix_error(ret_msg, "Invalid image config '%s'", mf->config.digest);
                return r;
        }
        r = image_check_config(mf, e ? e->digest : i->digest, c->config, ret_msg);
        if (r < 0)
                return r;
        for (size_t l = 0; l < mf->n_layers; l++) {
                const uint64_t *have = g_hash_table_lookup(c->blobs, mf->layers[l].digest);

                if (!have)
                        return json_set_error(
                                ret_msg, ENOENT,
                                "Layer '%s' of '%s' is neither in the archive nor in the content store",
                                mf->layers[l].digest, i->name);
                if (*have != mf->layers[l].size)
                        return json_set_error(ret_msg, EBADMSG,
                                              "Layer '%s' is stored with %" PRIu64
                                              " bytes, the manifest says %" PRIu64,
                                              mf->layers[l].digest, *have, mf->layers[l].size);
        }
        const RecordPlatform rp = {
                .manifest_digest = e ? e->digest : i->digest,
                .manifest_media_type = e ? e->media_type : i->media_type,
                .manifest_size = e ? e->size : i->size,
                .index_platform = e && e->has_platform ? &e->platform : NULL,
                .manifest = c->manifest,
                .config = c->config,
        };
        r = image_record_build(c->manager->images, i->name, i->digest, i->media_type, i->size, &rp, 1, &img);
        if (r < 0)
                return r;
        g_ptr_array_add(c->records, img);
        import_image_state_clear(c);
        c->next++;
        import_verify_next(c);
        return 0;
}

static int on_import_blob(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        ArchiveCall *c = userdata;
        _cleanup_free_ char *data = NULL, *msg = NULL;
        uint64_t have;
        int fd, r;

        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);

                r = json_set_error(&msg, sd_bus_error_get_errno(e), "Cannot open '%s': %s", c->want_digest,
                                   e->message ?: e->name);
        } else if (sd_bus_message_read(m, "ht", &fd, &have) < 0)
                r = json_set_error(&msg, EBADMSG, "Malformed OpenBlob reply for '%s'", c->want_digest);
        else
                /* SECURITY: re-hashed here: the fetcher's (and the archive's) word is not enough. */
                r = image_read_verified(fd, c->want_digest, c->want_size, c->want_max, &data, &msg);
        if (r >= 0)
                switch (c->step) {
                case IMPORT_TOP:
                        if (media_type_kind(((Imported *) c->imported->pdata[c->next])->media_type) ==
                            MEDIA_KIND_INDEX)
                                r = import_index(c, data, &msg);
                        else
                                r = import_manifest(c, data, &msg);
                        break;
                case IMPORT_MANIFEST:
                        r = import_manifest(c, data, &msg);
                        break;
                case IMPORT_CONFIG:
                        r = import_config(c, data, &msg); /* goes on with the next image */
                        break;
                }
        if (r < 0)
                import_fail_image(c, r, msg);
        return 0;
}

static void import_verify_next(ArchiveCall *c) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        /* The same (name, digest) twice is verified and recorded once. */
        while (c->next < c->imported->len) {
                const Imported *i = c->imported->pdata[c->next];
                bool dup = false;

                for (guint o = 0; !dup && o < c->next; o++)
                        dup = streq(i->name, ((Imported *) c->imported->pdata[o])->name);
                if (!dup)
                        break;
                c->next++;
        }
        if (c->next < c->imported->len) {
                const Imported *i = c->imported->pdata[c->next];

                r = import_load(c, IMPORT_TOP, i->digest, i->size, MANIFEST_SIZE_MAX);
                if (r < 0)
                        import_fail(c, internal_error_unreachable(&internal_fetcher, r, &error), &error);
                return;
        }
        r = import_commit(c, &error);
        if (r < 0)
                import_fail(c, r, &error);
        else
                archive_call_free(c);
}

static int on_import_blobs(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        g_autoptr(GArray) list = g_array_new(false, false, sizeof(FetcherBlob));
        ArchiveCall *c = userdata;
        int r;

        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);

                r = sd_bus_error_setf(&error, BERTH_ERROR_SERVICE_UNAVAILABLE,
                                      "Listing the content store failed: %s", e->message ?: e->name);
                import_fail(c, r, &error);
                return 0;
        }
        r = fetcher_read_blob_list(m, list);
        if (r < 0) {
                import_fail(c, r, NULL);
                return 0;
        }
        for (guint k = 0; k < list->len; k++) {
                const FetcherBlob *b = &g_array_index(list, FetcherBlob, k);
                uint64_t *v = g_new(uint64_t, 1);

                *v = b->size;
                g_hash_table_replace(c->blobs, g_strdup(b->digest), v);
        }
        import_verify_next(c);
        return 0;
}

static int on_import_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        ArchiveCall *c = userdata;
        int r;

        n_imports_running--;
        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);

                log_error("Import failed: %s", e && e->message ? e->message : "unknown error");
                (void) bus_reply_internal_error(c->request, e, "Importing the archive");
                archive_call_free(c);
                return 0;
        }
        c->imported = g_ptr_array_new_with_free_func(imported_free);
        c->records = g_ptr_array_new_with_free_func(image_free_notify);
        c->blobs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        r = import_read_report(c, m, &error);
        if (r >= 0) {
                /* Which layers the store holds, and their sizes: every layer must be there. */
                r = fetcher_call(c->manager, NULL, 0, on_import_blobs, c, "ListBlobs", NULL);
                if (r < 0)
                        r = internal_error_unreachable(&internal_fetcher, r, &error);
        }
        if (r < 0)
                import_fail(c, r, &error);
        return 0;
}

typedef struct ImportImageArgs {
        int fd;
        const char *name;
        uint64_t flags;
} ImportImageArgs;

static int import_image_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        ImportImageArgs *a = args;
        _cleanup_free_ char *normalised = NULL, *msg = NULL;
        ArchiveCall *c;
        struct stat st;
        uid_t uid;
        int r;

        r = bus_check_flags(a->flags, IMPORT_FLAGS_ALL, error);
        if (r < 0)
                return r;
        if (!isempty(a->name) && normalise(a->name, &normalised, &msg) < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_REFERENCE, "Invalid name '%.200s': %s",
                                         a->name, msg ?: "malformed");
        if (fstat(a->fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "The archive descriptor is a directory.");
        r = bus_message_sender_uid(m, &uid);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Cannot establish the caller's identity.");
        if (n_imports_running >= TRANSFERS_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "Too many imports running (limit %u).",
                                         TRANSFERS_MAX);

        c = archive_call_new(manager, m, a->name, uid);
        if (!c)
                return -ENOMEM;
        c->flags = a->flags;
        /* An archive may be large or arrive slowly through a pipe: the fetcher's stall guard bounds it. */
        r = fetcher_call(manager, NULL, ARCHIVE_CALL_TIMEOUT_USEC, on_import_reply, c, "ImportArchive", "ht",
                         a->fd, UINT64_C(0));
        if (r < 0) {
                archive_call_free(c);
                return internal_error_unreachable(&internal_fetcher, r, error);
        }
        n_imports_running++;
        log_info("Importing an archive%s%s for uid %u.", isempty(a->name) ? "" : " as ", normalised ?: "",
                 (unsigned) uid);
        return 1;
}

int method_import_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ImportImageArgs a = {};
        int r;

        r = sd_bus_message_read(m, "hst", &a.fd, &a.name, &a.flags);
        if (r < 0)
                return r;
        const char *details[] = { "name", broker_detail(a.name), NULL };
        return broker_authorize(m, details, import_image_authorized, userdata, &a, sizeof(a), NULL, error);
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
        return exports_per_uid ? GPOINTER_TO_UINT(g_hash_table_lookup(exports_per_uid,
                                                                      GUINT_TO_POINTER((unsigned) uid)))
                               : 0;
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

                log_error("Export of '%s' failed: %s", c->name_arg,
                          e && e->message ? e->message : "unknown error");
                (void) bus_reply_internal_error(c->request, e, "Exporting the image");
        } else {
                r = sd_bus_message_read(m, "t", &bytes);
                if (r < 0)
                        (void) sd_bus_reply_method_errorf(c->request, BERTH_ERROR_SERVICE_UNAVAILABLE,
                                                          "Malformed ExportArchive reply.");
                else {
                        log_info("Exported '%s' (%" PRIu64 " bytes) for uid %u.", c->name_arg, bytes,
                                 (unsigned) c->uid);
                        (void) sd_bus_reply_method_return(c->request, "");
                }
        }
        archive_call_free(c);
        return 0;
}

typedef struct ExportImageArgs {
        const char *reference;
        int fd;
        uint64_t flags;
} ExportImageArgs;

static int export_image_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        ExportImageArgs *a = args;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        g_autoptr(GPtrArray) digests = g_ptr_array_new();
        _cleanup_free_ char *name = NULL, *msg = NULL, *index_json = NULL;
        ArchiveCall *c;
        struct stat st;
        Image *i;
        uid_t uid;
        int r;

        r = bus_check_flags(a->flags, 0, error);
        if (r < 0)
                return r;
        if (normalise(a->reference, &name, &msg) < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_REFERENCE,
                                         "Invalid reference '%.200s': %s", a->reference, msg ?: "malformed");
        i = image_store_get(manager->images, name);
        if (!i)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "No image '%s'.", name);
        if (fstat(a->fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "The output descriptor is a directory.");
        r = bus_message_sender_uid(m, &uid);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Cannot establish the caller's identity.");
        if (export_running(uid) >= ARCHIVE_EXPORTS_PER_USER_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT,
                                         "Too many exports of yours running (limit %u).",
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
        c->flags = a->flags;
        r = fetcher_new_call(manager, &call, "ExportArchive");
        if (r >= 0)
                r = sd_bus_message_append(call, "hs", a->fd, index_json);
        if (r >= 0)
                r = sd_bus_message_append_strv(call, (char **) digests->pdata);
        if (r >= 0)
                r = internal_call_send(manager, call, NULL, ARCHIVE_CALL_TIMEOUT_USEC, on_export_reply, c);
        if (r < 0) {
                archive_call_free(c);
                return internal_error_unreachable(&internal_fetcher, r, error);
        }
        export_count(uid, +1);
        log_info("Exporting '%s' (%u blobs) for uid %u.", name, digests->len - 1, (unsigned) uid);
        return 1;
}

int method_export_image(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        ExportImageArgs a = {};
        int r;

        r = sd_bus_message_read(m, "sht", &a.reference, &a.fd, &a.flags);
        if (r < 0)
                return r;
        const char *details[] = { "reference", broker_detail(a.reference), NULL };
        return broker_authorize(m, details, export_image_authorized, userdata, &a, sizeof(a), NULL, error);
}
