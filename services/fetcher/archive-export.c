/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>

#include "archive-export.h"
#include "archive-dl.h"
#include "berth-limits.h"
#include "bus-names.h"
#include "bus-util.h"
#include "digest.h"
#include "json-util.h"
#include "log.h"

#define WRITE_BLOCK_SIZE (128U * 1024U)
#define OCI_LAYOUT_FILE "{\"imageLayoutVersion\":\"1.0.0\"}"

typedef struct Export {
        int fd;
        uint64_t bytes;
} Export;

static la_ssize_t write_callback(struct archive *a, void *userdata, const void *buffer, size_t length) {
        Export *ex = userdata;
        const uint8_t *p = buffer;
        size_t left = length;

        while (left > 0) {
                ssize_t k;

                archive_stall_guard();
                k = write(ex->fd, p, left);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                /* A non-blocking descriptor: wait for room (the stall guard bounds it). */
                                struct pollfd pfd = { .fd = ex->fd, .events = POLLOUT };
                                (void) poll(&pfd, 1, -1);
                                continue;
                        }
                        archive_set_error(a, errno, "%s", strerror(errno));
                        return -1;
                }
                p += k;
                left -= (size_t) k;
                ex->bytes += (uint64_t) k;
        }
        return (la_ssize_t) length;
}

static void free_archive(struct archive *a) {
        if (a)
                archive_write_free(a);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct archive *, free_archive);

static void free_entry(struct archive_entry *e) {
        if (e)
                archive_entry_free(e);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct archive_entry *, free_entry);

static int write_failed(ArchiveReport *rep, struct archive *a, const char *what) {
        int e = archive_errno(a);

        if (e == EPIPE)
                return archive_report_error(rep, BERTH_ERROR_IO, EPIPE,
                                            "The reader of the export went away (broken pipe)");
        return archive_report_error(rep, BERTH_ERROR_IO, e ?: EIO, "Failed to write %s: %s", what,
                                    archive_error_string(a) ?: "write error");
}

static int write_header(struct archive *a, const char *path, bool dir, uint64_t size, ArchiveReport *rep) {
        _cleanup_(free_entryp) struct archive_entry *e = archive_entry_new();

        if (!e)
                return -ENOMEM;
        archive_entry_set_pathname(e, path);
        archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
        archive_entry_set_perm(e, dir ? 0755 : 0644);
        archive_entry_set_size(e, dir ? 0 : (la_int64_t) size);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        archive_entry_set_mtime(e, 0, 0);
        if (archive_write_header(a, e) != ARCHIVE_OK)
                return write_failed(rep, a, path);
        return 0;
}

static int write_data(struct archive *a, const char *path, const void *data, size_t size,
                      ArchiveReport *rep) {
        const uint8_t *p = data;

        while (size > 0) {
                la_ssize_t k = archive_write_data(a, p, size);
                if (k <= 0)
                        return write_failed(rep, a, path);
                p += k;
                size -= (size_t) k;
        }
        return 0;
}

static int write_buffer(struct archive *a, const char *path, const char *data, ArchiveReport *rep) {
        int r = write_header(a, path, false, strlen(data), rep);
        return r < 0 ? r : write_data(a, path, data, strlen(data), rep);
}

static int write_blob(struct archive *a, ContentStore *store, const char *digest, uint8_t *buf,
                      ArchiveReport *rep) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *colon = strchr(digest, ':');
        uint64_t size, done = 0;
        int r;

        if (asprintf_safe(&path, "blobs/%.*s/%s", (int) (colon - digest), digest, colon + 1) < 0)
                return -ENOMEM;
        r = content_store_open_blob(store, digest, &fd, &size);
        if (r < 0)
                return archive_report_error(rep, r == -ENOENT ? BERTH_ERROR_NOT_FOUND : BERTH_ERROR_IO, r,
                                            "Blob '%s' is not in the content store", digest);
        r = write_header(a, path, false, size, rep);
        if (r < 0)
                return r;
        while (done < size) {
                ssize_t k = pread(fd, buf, WRITE_BLOCK_SIZE, (off_t) done);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return archive_report_error(rep, BERTH_ERROR_IO, k < 0 ? errno : EIO,
                                                    "Failed to read blob '%s'", digest);
                if ((uint64_t) k > size - done)
                        k = (ssize_t) (size -
                                       done); /* committed blobs do not grow; never write past the header */
                r = write_data(a, path, buf, (size_t) k, rep);
                if (r < 0)
                        return r;
                done += (uint64_t) k;
        }
        return 0;
}

int archive_export(ContentStore *store, int fd, const char *index_json, char *const *digests,
                   ArchiveReport *rep) {
        _cleanup_(free_archivep) struct archive *a = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        const char *last_alg_dir = NULL;
        Export ex = { .fd = fd };
        int r;

        buf = malloc(WRITE_BLOCK_SIZE);
        a = archive_write_new();
        if (!buf || !a)
                return -ENOMEM;
        /* pax_restricted: plain ustar headers unless a name needs an extension (ours never do). */
        if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
            archive_write_add_filter_none(a) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK)
                return archive_report_error(rep, BERTH_ERROR_IO, EIO, "libarchive: %s",
                                            strna(archive_error_string(a)));
        if (archive_write_open(a, &ex, NULL, write_callback, NULL) != ARCHIVE_OK)
                return write_failed(rep, a, "the archive");

        r = write_header(a, "blobs/", true, 0, rep);
        if (r < 0)
                return r;
        /* digests are sorted, so every algorithm's blobs come together, after its directory. */
        for (char *const *d = digests; d && *d; d++) {
                _cleanup_free_ char *dir = NULL;
                const char *colon = strchr(*d, ':');

                if (!last_alg_dir || strncmp(*d, last_alg_dir, (size_t) (colon - *d + 1)) != 0) {
                        if (asprintf_safe(&dir, "blobs/%.*s/", (int) (colon - *d), *d) < 0)
                                return -ENOMEM;
                        r = write_header(a, dir, true, 0, rep);
                        if (r < 0)
                                return r;
                        last_alg_dir = *d;
                }
                r = write_blob(a, store, *d, buf, rep);
                if (r < 0)
                        return r;
        }
        r = write_buffer(a, "index.json", index_json, rep);
        if (r < 0)
                return r;
        r = write_buffer(a, "oci-layout", OCI_LAYOUT_FILE, rep);
        if (r < 0)
                return r;
        if (archive_write_close(a) != ARCHIVE_OK)
                return write_failed(rep, a, "the end of the archive");

        json_builder_set_member_name(rep->result, "bytes");
        json_builder_add_int_value(rep->result, (gint64) ex.bytes);
        return 0;
}

/* ---- ExportArchive(h out, s index_json, as digests) → t bytes ----------------------------------------- */

typedef struct ExportArgs {
        ContentStore *store;
        int fd;
        const char *index_json;
        char **digests;
} ExportArgs;

static int export_child(void *userdata, ArchiveReport *rep) {
        ExportArgs *args = userdata;

        return archive_export(args->store, args->fd, args->index_json, args->digests, rep);
}

static int export_reply(sd_bus_message *call, JsonObject *result) {
        gint64 bytes = json_object_get_int_member_with_default(result, "bytes", -1);

        if (bytes < 0)
                return -EBADMSG;
        log_info("Exported an archive: %" PRIi64 " bytes.", bytes);
        return sd_bus_reply_method_return(call, "t", (uint64_t) bytes);
}

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int method_export_archive(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_free_ char *msg_err = NULL;
        g_auto(GStrv) digests = NULL;
        ArchiveContext *ctx = userdata;
        ExportArgs args = { .store = ctx->store };
        size_t n = 0, k = 0;
        struct stat st;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "hs", &args.fd, &args.index_json);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(msg, &digests);
        if (r < 0)
                return r;

        r = json_parse_bounded(args.index_json, strlen(args.index_json), MANIFEST_SIZE_MAX, &root, &msg_err);
        if (r < 0 || !JSON_NODE_HOLDS_OBJECT(root) ||
            !json_object_get_array_or_null(json_node_get_object(root), "manifests"))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid index.json: %s",
                                         msg_err ?: "not an image index");
        n = digests ? g_strv_length(digests) : 0;
        if (n == 0 || n > ARCHIVE_ENTRIES_MAX - 8)
                return sd_bus_error_setf(error, BERTH_ERROR_LIMIT, "Between 1 and %u digests, please",
                                         ARCHIVE_ENTRIES_MAX - 8);
        for (size_t i = 0; i < n; i++) {
                if (strlen(digests[i]) >= DIGEST_STRING_MAX || digest_validate(digests[i], NULL) < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid digest '%.80s'",
                                                 digests[i]);
        }
        /* Sorted and unique: the archive is deterministic and names no entry twice. */
        qsort(digests, n, sizeof(char *), compare_strings);
        for (size_t i = 0; i < n; i++) {
                if (k > 0 && streq(digests[k - 1], digests[i])) {
                        g_free(digests[i]);
                        continue;
                }
                digests[k++] = digests[i];
        }
        digests[k] = NULL;
        /* Everything present before the first byte goes out: a missing blob fails cleanly. */
        for (size_t i = 0; i < k; i++) {
                r = content_store_has_blob(ctx->store, digests[i]);
                if (r <= 0)
                        return sd_bus_error_setf(error, r == 0 ? BERTH_ERROR_NOT_FOUND : BERTH_ERROR_IO,
                                                 "Blob '%s' is not in the content store", digests[i]);
        }
        if (fstat(args.fd, &st) < 0)
                return sd_bus_error_set_errnof(error, errno, "Cannot stat the output descriptor: %m");
        if (S_ISDIR(st.st_mode))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "The output descriptor is a directory");
        args.digests = digests;
        log_info("Exporting %zu blob(s).", k);
        return archive_job_spawn(ctx, msg, args.fd, export_child, &args, export_reply, error);
}
