/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* Content digests, parsed strictly: "sha256:" + 64 lowercase hex, or "sha512:" + 128 lowercase hex.
 * Nothing else (no uppercase, no other algorithms, no whitespace) is a digest. */

typedef enum DigestAlgorithm {
        DIGEST_SHA256,
        DIGEST_SHA512,
        _DIGEST_ALGORITHM_MAX,
        _DIGEST_ALGORITHM_INVALID = -EINVAL,
} DigestAlgorithm;

#define DIGEST_STRING_MAX (7 + 128 + 1) /* "sha512:" + hex + NUL */

/* Returns 0 if s is a valid digest string, -EINVAL otherwise. ret_algorithm may be NULL. */
int digest_validate(const char *s, DigestAlgorithm *ret_algorithm);
bool digest_is_valid(const char *s);
/* "sha256:abcd…" → "abcd…" (pointer into s); s must be valid. */
const char *digest_hex(const char *s);

/* Streaming hasher over OpenSSL EVP. */
typedef struct Hasher Hasher;
int hasher_new(DigestAlgorithm algorithm, Hasher **ret);
int hasher_update(Hasher *h, const void *data, size_t size);
/* Writes "sha256:<hex>" into ret (at least DIGEST_STRING_MAX bytes). The hasher cannot be updated after. */
int hasher_finish(Hasher *h, char ret[static DIGEST_STRING_MAX]);
uint64_t hasher_bytes(const Hasher *h);
Hasher *hasher_free(Hasher *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Hasher *, hasher_free);

/* Hash a whole buffer / everything readable from fd (from its current offset). */
int digest_buffer(DigestAlgorithm algorithm, const void *data, size_t size,
                  char ret[static DIGEST_STRING_MAX]);
int digest_fd(DigestAlgorithm algorithm, int fd, char ret[static DIGEST_STRING_MAX], uint64_t *ret_size);

/* Constant-time equality of two digest strings (both must be valid; different algorithms are unequal). */
bool digest_equal(const char *a, const char *b);
