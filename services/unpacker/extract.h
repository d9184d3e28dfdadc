/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "digest.h"
#include "oci-types.h"

/* Extracts one layer blob into a directory, verifying it. This is the code that runs inside the
 * sandboxed child; it is also usable directly (unit tests), it needs no sandbox to be confined: every
 * path is resolved in-root and every final component is created without following anything. */

typedef enum UnpackFailure {
        UNPACK_OK,
        UNPACK_FAILURE_IO,          /* org.berth.Error.IO */
        UNPACK_FAILURE_BAD_CONTENT, /* org.berth.Error.BadContent */
        UNPACK_FAILURE_LIMIT,       /* org.berth.Error.LimitExceeded */
        UNPACK_FAILURE_DIGEST,      /* org.berth.Error.DigestMismatch */
        _UNPACK_FAILURE_MAX,
} UnpackFailure;

typedef struct UnpackLimits {
        uint64_t max_uncompressed_bytes;
        uint64_t max_entries;
} UnpackLimits;

typedef struct ExtractRequest {
        const char *layer_digest; /* expected digest of the blob, as given */
        const char *diff_id;      /* expected digest of the uncompressed tar stream */
        LayerCompression compression;
        UnpackLimits limits;
        /* > 2: when the tree is complete, write here the directories the layer only implied (created
         * for an entry below them, never named by an entry of their own), each path NUL-terminated,
         * parents first: the unpacker then gives them the metadata of the same directory in the layers
         * below (implied-dirs.c), as containerd's applier does. 0: not wanted. */
        int implied_fd;
} ExtractRequest;

#define UNPACK_MESSAGE_MAX 1024U

typedef struct ExtractResult {
        UnpackFailure failure;
        uint64_t uncompressed_size;
        uint64_t compressed_size;
        uint64_t entries;
        char message[UNPACK_MESSAGE_MAX]; /* one line, for the failure */
} ExtractResult;

/* root_fd: the snapshot's fs/ directory (O_RDONLY|O_DIRECTORY). Returns 0 when the tree is complete and
 * both digests matched; otherwise -errno with ret->failure and ret->message set. The tree is then
 * garbage for the caller to remove. Changes the umask for the duration of the call. */
int layer_extract(int blob_fd, int root_fd, const ExtractRequest *req, ExtractResult *ret);

const char *unpack_failure_to_string(UnpackFailure f);
