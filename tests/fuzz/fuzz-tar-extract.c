/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Tar headers and everything behind them (paths, links, whiteouts, xattrs, devices, sizes, PAX and GNU
 * extensions) through the unpacker's public layer_extract() (services/unpacker/extract.c), exactly as
 * the sandboxed child calls it, minus the sandbox: the input is an uncompressed layer blob, read from a
 * memfd and extracted into a fresh directory. Both expected digests are the input's own, so the whole
 * stream is extracted. Next to the root lies a sentinel directory: an entry that lands outside the root
 * (a link followed, a '..' resolved) fills it, and that aborts.
 *
 * Run libFuzzer on this target as an unprivileged user (e.g. `unshare -r`), so that a real escape could
 * not reach anything that matters. */

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "extract.h"
#include "fs-util.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool dir_is_empty(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;
        bool empty = true;

        if (!d)
                abort();
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        empty = false;
        closedir(d);
        return empty;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *top = NULL, *root = NULL, *sentinel = NULL;
        _cleanup_close_ int blob_fd = -EBADF, root_fd = -EBADF;
        char digest[DIGEST_STRING_MAX];
        ExtractRequest req;
        ExtractResult res;
        int r;

        if (asprintf(&top, "%s/run", fuzz_scratch_dir()) < 0 || asprintf(&root, "%s/fs", top) < 0 ||
            asprintf(&sentinel, "%s/sentinel", top) < 0)
                abort();
        if (mkdir(top, 0700) < 0 || mkdir(root, 0755) < 0 || mkdir(sentinel, 0700) < 0)
                abort();

        blob_fd = memfd_create("fuzz-layer", MFD_CLOEXEC);
        if (blob_fd < 0 || loop_write(blob_fd, data, size) < 0 || lseek(blob_fd, 0, SEEK_SET) != 0)
                abort();
        if (digest_buffer(DIGEST_SHA256, data, size, digest) < 0)
                abort();
        root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                abort();

        req = (ExtractRequest){
                .layer_digest = digest,
                .diff_id = digest,
                .compression = LAYER_COMPRESSION_NONE,
                /* Small, so the limits themselves are reached, and one input cannot fill the disk. */
                .limits = { .max_uncompressed_bytes = 4U * 1024U * 1024U, .max_entries = 512 },
        };
        r = layer_extract(blob_fd, root_fd, &req, &res);

        /* A failure is classified and explained in one line; a success has no failure. */
        if (r < 0 && (res.failure == UNPACK_OK || res.failure >= _UNPACK_FAILURE_MAX || !res.message[0] ||
                      strchr(res.message, '\n')))
                abort();
        if (r >= 0 &&
            (res.failure != UNPACK_OK || res.uncompressed_size > req.limits.max_uncompressed_bytes ||
             res.entries > req.limits.max_entries))
                abort();
        /* SECURITY: nothing of the layer exists outside its root. */
        if (!dir_is_empty(sentinel))
                abort();

        /* The extractor may leave directories it made without write or search permission. */
        (void) chmod(root, 0700);
        fuzz_remove_tree(top);
        return 0;
}
