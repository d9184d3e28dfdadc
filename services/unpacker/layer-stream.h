/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <archive.h>
#include <stdbool.h>
#include <stdint.h>

#include "digest.h"
#include "oci-types.h"

/* The byte pipeline of one layer: blob fd → (hash compressed) → decompressor → (hash uncompressed,
 * count against the limit) → tar reader.
 *
 * Two libarchive objects: `outer` reads the blob with the "raw" format and exactly one forced filter
 * (gzip or zstd; none for plain tar), and yields the uncompressed stream; our read callback on the
 * inner, tar-only reader pulls from it and hashes every byte it hands over. So the diff_id hash covers
 * exactly the uncompressed stream, including tar padding, end blocks and anything after them (drained by
 * layer_stream_finish()). A blob file is read with pread() from offset 0, independent of the fd's shared
 * file offset; a pipe (how the unpacker service feeds it, blob-feed.h) with read(). */

typedef struct LayerStream {
        int blob_fd;
        uint64_t blob_offset;
        LayerCompression compression;
        uint64_t max_bytes;

        struct archive *outer; /* NULL for uncompressed layers */
        struct archive *tar;

        Hasher *compressed;
        Hasher *uncompressed;
        uint64_t uncompressed_bytes;

        void *blob_buffer;
        void *tar_buffer;

        bool blob_is_pipe; /* read() in order instead of pread() */
        bool limit_hit;
        bool outer_eof;
        int io_error; /* -errno of a failed pread() */
        char *outer_error;
} LayerStream;

/* Sets up both readers. compressed_algorithm/uncompressed_algorithm come from the expected digests. */
int layer_stream_open(LayerStream *s, int blob_fd, LayerCompression compression, uint64_t max_bytes,
                      DigestAlgorithm compressed_algorithm, DigestAlgorithm uncompressed_algorithm);

/* After the tar reader reached its end: consume the rest of the uncompressed stream and of the blob,
 * hashing both, and return the two digests. */
int layer_stream_finish(LayerStream *s, char compressed[static DIGEST_STRING_MAX],
                        char uncompressed[static DIGEST_STRING_MAX]);

void layer_stream_done(LayerStream *s);
