/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <archive.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "fs-util.h"
#include "layer-stream.h"

/* 1 MiB per read: few syscalls and few libarchive callback round trips for big layers. */
#define LAYER_STREAM_BUFFER_SIZE (1024U * 1024U)

/* The service feeds the layer through a pipe (blob-feed.h): read it in order. A file (the unit tests)
 * is read with pread() from offset 0, whatever its fd's offset. */
static ssize_t stream_read_full(LayerStream *s, void *buf, size_t size) {
        ssize_t n;
        size_t got = 0;

        if (!s->blob_is_pipe) {
                n = pread_full(s->blob_fd, buf, size, (off_t) s->blob_offset);
                if (n != -ESPIPE)
                        return n;
                s->blob_is_pipe = true;
        }
        while (got < size) {
                n = read(s->blob_fd, (uint8_t *) buf + got, size - got);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                got += (size_t) n;
        }
        return (ssize_t) got;
}

static ssize_t blob_read(LayerStream *s, void *buf, size_t size) {
        ssize_t n;

        n = stream_read_full(s, buf, size);
        if (n < 0) {
                s->io_error = (int) n;
                return -1;
        }
        s->blob_offset += (uint64_t) n;
        if (hasher_update(s->compressed, buf, (size_t) n) < 0) {
                s->io_error = -ENOMEM;
                return -1;
        }
        return n;
}

static la_ssize_t outer_read_cb(struct archive *a, void *userdata, const void **ret) {
        LayerStream *s = userdata;
        ssize_t n;

        n = blob_read(s, s->blob_buffer, LAYER_STREAM_BUFFER_SIZE);
        if (n < 0) {
                archive_set_error(a, -s->io_error, "Failed to read the layer blob");
                return -1;
        }
        *ret = s->blob_buffer;
        return n;
}

/* Produces the next piece of the uncompressed stream into s->tar_buffer; 0 at its end, -1 on error. */
static ssize_t uncompressed_next(LayerStream *s) {
        ssize_t n;

        if (s->outer_eof)
                return 0;

        if (!s->outer)
                n = blob_read(s, s->tar_buffer, LAYER_STREAM_BUFFER_SIZE);
        else {
                n = archive_read_data(s->outer, s->tar_buffer, LAYER_STREAM_BUFFER_SIZE);
                if (n < 0) {
                        if (!s->outer_error && s->io_error == 0)
                                s->outer_error =
                                        strdup(archive_error_string(s->outer) ?: "decompression failed");
                        return -1;
                }
        }
        if (n < 0)
                return -1;
        if (n == 0) {
                s->outer_eof = true;
                return 0;
        }

        /* SECURITY: the limit counts what the decompressor produced, so a small gzip bomb stops at
         * max_bytes no matter how the tar headers describe it (CVE-2017-14992). */
        s->uncompressed_bytes += (uint64_t) n;
        if (s->uncompressed_bytes > s->max_bytes) {
                s->limit_hit = true;
                return -1;
        }
        if (hasher_update(s->uncompressed, s->tar_buffer, (size_t) n) < 0) {
                s->io_error = -ENOMEM;
                return -1;
        }
        return n;
}

static la_ssize_t tar_read_cb(struct archive *a, void *userdata, const void **ret) {
        LayerStream *s = userdata;
        ssize_t n;

        n = uncompressed_next(s);
        if (n < 0) {
                archive_set_error(a, EIO, "Failed to read the uncompressed layer stream");
                return -1;
        }
        *ret = s->tar_buffer;
        return n;
}

int layer_stream_open(LayerStream *s, int blob_fd, LayerCompression compression, uint64_t max_bytes,
                      DigestAlgorithm compressed_algorithm, DigestAlgorithm uncompressed_algorithm) {
        struct archive_entry *raw_entry;
        int r;

        *s = (LayerStream){
                .blob_fd = blob_fd,
                .compression = compression,
                .max_bytes = max_bytes,
        };

        r = hasher_new(compressed_algorithm, &s->compressed);
        if (r < 0)
                return r;
        r = hasher_new(uncompressed_algorithm, &s->uncompressed);
        if (r < 0)
                return r;
        s->blob_buffer = malloc(LAYER_STREAM_BUFFER_SIZE);
        s->tar_buffer = malloc(LAYER_STREAM_BUFFER_SIZE);
        if (!s->blob_buffer || !s->tar_buffer)
                return -ENOMEM;

        if (compression != LAYER_COMPRESSION_NONE) {
                s->outer = archive_read_new();
                if (!s->outer)
                        return -ENOMEM;
                /* SECURITY: exactly one decompressor, chosen by the media type the broker declared, and no
                 * bidding among the others: libarchive's rarely used readers stay unreachable (U9). */
                r = archive_read_append_filter(s->outer, compression == LAYER_COMPRESSION_GZIP
                                                                 ? ARCHIVE_FILTER_GZIP
                                                                 : ARCHIVE_FILTER_ZSTD);
                if (r == ARCHIVE_OK)
                        r = archive_read_support_format_raw(s->outer);
                if (r != ARCHIVE_OK)
                        return -EOPNOTSUPP;
                if (archive_read_open(s->outer, s, NULL, outer_read_cb, NULL) != ARCHIVE_OK ||
                    archive_read_next_header(s->outer, &raw_entry) != ARCHIVE_OK) {
                        s->outer_error = strdup(archive_error_string(s->outer) ?: "not a compressed stream");
                        return s->io_error < 0 ? s->io_error : -EBADMSG;
                }
        }

        s->tar = archive_read_new();
        if (!s->tar)
                return -ENOMEM;
        /* SECURITY: tar only (ustar, pax, GNU); no filters on the inner reader, so a tar inside a tar.gz
         * inside the declared compression is just bad content. */
        if (archive_read_support_format_tar(s->tar) != ARCHIVE_OK)
                return -EOPNOTSUPP;
        if (archive_read_open(s->tar, s, NULL, tar_read_cb, NULL) != ARCHIVE_OK)
                return s->io_error < 0 ? s->io_error : s->limit_hit ? -EFBIG : -EBADMSG;
        return 0;
}

int layer_stream_finish(LayerStream *s, char compressed[static DIGEST_STRING_MAX],
                        char uncompressed[static DIGEST_STRING_MAX]) {
        int r;

        /* The diff_id covers the whole uncompressed stream: whatever the tar reader did not ask for
         * (end-of-archive blocks, trailing bytes) is hashed here, against the same limit. */
        for (;;) {
                ssize_t n = uncompressed_next(s);
                if (n < 0)
                        return s->io_error < 0 ? s->io_error : s->limit_hit ? -EFBIG : -EBADMSG;
                if (n == 0)
                        break;
        }

        /* And the digest covers the whole blob, even bytes after the end of the compressed stream. */
        for (;;) {
                ssize_t n = blob_read(s, s->blob_buffer, LAYER_STREAM_BUFFER_SIZE);
                if (n < 0)
                        return s->io_error;
                if (n == 0)
                        break;
        }

        r = hasher_finish(s->compressed, compressed);
        if (r < 0)
                return r;
        return hasher_finish(s->uncompressed, uncompressed);
}

void layer_stream_done(LayerStream *s) {
        if (s->tar)
                archive_read_free(s->tar);
        if (s->outer)
                archive_read_free(s->outer);
        hasher_free(s->compressed);
        hasher_free(s->uncompressed);
        free(s->blob_buffer);
        free(s->tar_buffer);
        free(s->outer_error);
        *s = (LayerStream){ .blob_fd = -EBADF };
}
