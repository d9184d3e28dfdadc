/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* A `docker save` archive's manifest.json, through the fetcher's public archive_import() (ImportArchive's
 * child, services/fetcher/archive-import.c). The input is the manifest.json of an otherwise fixed archive
 * that holds a config, a layer, links to it (relative, hard, chained, looping) and
 * a few look-alikes; the archive is built in memory and read from a memfd into a scratch content store.
 * Whatever the manifest names, the import either succeeds with images or fails with a named error. */

#include <archive.h>
#include <archive_entry.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "archive-import.h"
#include "archive-job.h"
#include "content-store.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* archive-dl.h; not included, since it renames the libarchive calls this file makes itself. */
int archive_dl_open(const char **ret_error);

static const char config_json[] =
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
static const char layer_bytes[] = "not really a tar, the import does not look inside layers";

static void add(struct archive *a, const char *name, mode_t type, const char *link, bool hard,
                const void *buf, size_t n) {
        struct archive_entry *e = archive_entry_new();

        if (!e)
                abort();
        archive_entry_copy_pathname(e, name);
        archive_entry_set_filetype(e, type);
        archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
        if (link && hard)
                archive_entry_copy_hardlink(e, link);
        else if (link)
                archive_entry_copy_symlink(e, link);
        archive_entry_set_size(e, (la_int64_t) n);
        if (archive_write_header(a, e) != ARCHIVE_OK)
                abort();
        if (n > 0 && archive_write_data(a, buf, n) != (la_ssize_t) n)
                abort();
        archive_entry_free(e);
}

static int build_archive(const uint8_t *manifest, size_t size) {
        struct archive *a = archive_write_new();
        int fd = memfd_create("fuzz-docker-save", MFD_CLOEXEC);

        if (!a || fd < 0 || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
            archive_write_open_fd(a, fd) != ARCHIVE_OK)
                abort();
        add(a, "cfg.json", AE_IFREG, NULL, false, config_json, strlen(config_json));
        add(a, "l1", AE_IFDIR, NULL, false, NULL, 0);
        add(a, "l1/layer.tar", AE_IFREG, NULL, false, layer_bytes, strlen(layer_bytes));
        add(a, "l2/layer.tar", AE_IFLNK, "../l1/layer.tar", false, NULL, 0);
        add(a, "l3/layer.tar", AE_IFREG, "l1/layer.tar", true, NULL, 0);
        add(a, "l4/layer.tar", AE_IFLNK, "../l2/layer.tar", false, NULL, 0);
        add(a, "loop/layer.tar", AE_IFLNK, "layer.tar", false, NULL, 0);
        add(a, "sub/up.json", AE_IFLNK, "../cfg.json", false, NULL, 0);
        add(a, "repositories", AE_IFREG, NULL, false, "{}", 2);
        add(a, "manifest.json", AE_IFREG, NULL, false, manifest, size);
        if (archive_write_close(a) != ARCHIVE_OK)
                abort();
        archive_write_free(a);
        if (lseek(fd, 0, SEEK_SET) != 0)
                abort();
        return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static ContentStore *store;
        _cleanup_close_ int fd = -EBADF;
        g_autoptr(JsonBuilder) result = json_builder_new();
        ArchiveReport rep = { .result = result };
        int r;

        /* One store for the run: the same few blobs are committed again and again (then found present). */
        if (!store) {
                /* archive-import.c reaches libarchive through archive-dl.h, as the fetcher's child does. */
                if (archive_dl_open(NULL) < 0)
                        abort();
                _cleanup_free_ char *path = NULL;

                if (asprintf(&path, "%s/content", fuzz_scratch_dir()) < 0 ||
                    content_store_open(path, &store) < 0)
                        abort();
        }

        fd = build_archive(data, size);
        json_builder_begin_object(result);
        r = archive_import(store, fd, &rep);
        (void) alarm(0); /* the import arms a stall guard for its reads; nothing reads now */

        /* A failure always names its reason; a success names none. */
        if ((r < 0) != (rep.error_name != NULL))
                abort();
        if (r < 0 && !rep.error_message)
                abort();
        if (r >= 0) {
                g_autoptr(JsonNode) root = NULL;
                JsonArray *images;

                json_builder_end_object(result);
                root = json_builder_get_root(result);
                if (!root || !JSON_NODE_HOLDS_OBJECT(root))
                        abort();
                images = json_object_get_array_member(json_node_get_object(root), "images");
                if (!images || json_array_get_length(images) == 0)
                        abort();
        }
        free(rep.error_message);
        return 0;
}
