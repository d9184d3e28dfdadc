/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "digest.h"
#include "macro.h"

/* The content store, laid out like containerd's:
 *   <root>/blobs/<alg>/<hex>     committed, verified, mode 0444; never written again
 *   <root>/ingest/<alg>-<hex>/   a download in progress: data, ref (the digest), total (decimal size)
 * Everything is opened relative to the root directory fd with O_NOFOLLOW; every path component we build
 * comes from a digest that passed digest_validate() (CVE-2024-3727: no path from the network).
 * Nothing appears under blobs/ before its bytes were hashed and compared with the expected digest and
 * size: write to ingest, fsync, verify, rename. */

typedef struct ContentStore ContentStore;

/* Opens (creating if needed, mode 0700) the store at path. */
int content_store_open(const char *path, ContentStore **ret);
ContentStore *content_store_free(ContentStore *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ContentStore *, content_store_free);

/* Read-only fd (O_CLOEXEC) to a committed blob, and its size. -ENOENT when absent. */
int content_store_open_blob(ContentStore *s, const char *digest, int *ret_fd, uint64_t *ret_size);
int content_store_has_blob(ContentStore *s, const char *digest);
/* The same, once the blob was re-hashed (once per inode for the store's lifetime): a blob that does not
 * hash to its name is removed and -ENOENT returned, so that it is downloaded again. */
int content_store_open_blob_verified(ContentStore *s, const char *digest, int *ret_fd, uint64_t *ret_size);
/* The same in three steps, so that the hashing can run off the event loop (blob-verify.h):
 *  - content_store_open_blob_to_verify(): opens the blob; 1 when this inode was verified already, 0 when
 *    it must be re-hashed first, -ENOENT when absent;
 *  - content_store_blob_hashes_to(): 1 if what fd reads hashes to digest, 0 if not, -ECANCELED once
 *    *cancel (when given) is set (touches only fd and *cancel: safe in another thread);
 *  - content_store_blob_verdict(): given that answer (or its -errno), remembers the inode as verified
 *    and returns 0, or removes the blob and returns -ENOENT. */
int content_store_open_blob_to_verify(ContentStore *s, const char *digest, int *ret_fd, uint64_t *ret_size);
int content_store_blob_hashes_to(int fd, const char *digest, const bool *cancel);
int content_store_blob_verdict(ContentStore *s, const char *digest, int fd, int hashes);

typedef struct BlobInfo {
        char digest[DIGEST_STRING_MAX];
        uint64_t size;
        uint64_t mtime_usec;
} BlobInfo;
/* All committed blobs (entries whose names are not valid hex are skipped). */
int content_store_list(ContentStore *s, BlobInfo **ret, size_t *ret_n);
/* Remove one committed blob; adds its size to *freed. -ENOENT when absent. */
int content_store_remove_blob(ContentStore *s, const char *digest, uint64_t *freed);
/* Remove ingests whose last write is older than min_age_usec and for which in_use() is false (called with
 * the digest, or with the key for INGEST_ANONYMOUS_PREFIX ingests). */
int content_store_clean_ingests(ContentStore *s, uint64_t min_age_usec,
                                bool (*in_use)(const char *digest, void *ud), void *userdata,
                                uint64_t *ret_freed);

/* Store a complete in-memory document (a manifest) under digest, verifying it first. On success ret_fd
 * (may be NULL) is a read-only fd to the committed blob. -EBADMSG if the bytes do not hash to digest. */
int content_store_write_buffer(ContentStore *s, const char *digest, const void *data, size_t size,
                               int *ret_fd);

/* One partial download. */
typedef struct Ingest Ingest;

/* Opens the ingest for digest/total. An existing ingest with the same ref and total is resumed: its data
 * is re-hashed (slow, but there is no trusted saved hash state) and ingest_offset() says where to
 * continue. A stale or inconsistent ingest is recreated. */
int ingest_open(ContentStore *s, const char *digest, uint64_t total, Ingest **ret);
/* (ingest_open() returns -EBUSY while another Ingest of the same digest is open: one writer each.) */
Ingest *ingest_free(Ingest *i); /* closes; keeps the data for a later resume */
DEFINE_TRIVIAL_CLEANUP_FUNC(Ingest *, ingest_free);
uint64_t ingest_offset(const Ingest *i);
uint64_t ingest_total(const Ingest *i);
/* Append bytes; -EFBIG when they would exceed total (the peer sends more than the descriptor says). */
int ingest_write(Ingest *i, const void *data, size_t size);
/* Throw the partial data away and start from zero (server ignored Range). */
int ingest_reset(Ingest *i);
/* Verify size and digest, fsync, rename into blobs/, chmod 0444. On mismatch the ingest is deleted and
 * -EBADMSG returned, with the computed digest in ret_actual (NULL or DIGEST_STRING_MAX bytes). On success
 * ret_fd (may be NULL) is a read-only fd to the committed blob. The Ingest is unusable afterwards (free it).
 */
int ingest_commit(Ingest *i, int *ret_fd, char *ret_actual);
/* Delete the ingest directory. */
int ingest_abort(Ingest *i);

/* An ingest under a private random key "import-<hex>" (archive imports): never resumed, never shared
 * with a FetchBlob of the same digest. expected NULL: the blob is committed under whatever its bytes
 * hash to (sha256; ingest_commit()'s ret_actual says which); else as ingest_open(). total is exact. */
#define INGEST_ANONYMOUS_PREFIX "import-"
int ingest_open_anonymous(ContentStore *s, const char *expected, uint64_t total, Ingest **ret);

/* The store's own directory fds (root, blobs/<alg>, ingest), for a sandboxed child that must keep exactly
 * these (archive-job.c). Returns how many it wrote into fds (at most n). */
size_t content_store_fds(ContentStore *s, int *fds, size_t n);
