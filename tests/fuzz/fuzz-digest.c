/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdint.h>
#include <string.h>

#include "digest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = NULL;
        char whole[DIGEST_STRING_MAX], split[DIGEST_STRING_MAX];
        DigestAlgorithm a;

        s = strndup((const char *) data, size);
        if (!s)
                return 0;

        if (digest_validate(s, &a) >= 0) {
                if (a < 0 || a >= _DIGEST_ALGORITHM_MAX || !digest_equal(s, s) || strlen(digest_hex(s)) < 64)
                        abort();
        } else if (digest_equal(s, s))
                abort();

        /* Streaming in two pieces gives the same digest as hashing the whole buffer. */
        for (DigestAlgorithm alg = 0; alg < _DIGEST_ALGORITHM_MAX; alg++) {
                _cleanup_(hasher_freep) Hasher *h = NULL;
                size_t cut = size > 0 ? data[0] % (size + 1) : 0;

                if (digest_buffer(alg, data, size, whole) < 0)
                        abort();
                if (hasher_new(alg, &h) < 0 || hasher_update(h, data, cut) < 0 ||
                    hasher_update(h, data + cut, size - cut) < 0 || hasher_finish(h, split) < 0)
                        abort();
                if (strcmp(whole, split) != 0 || !digest_is_valid(whole) || !digest_equal(whole, split) ||
                    hasher_bytes(h) != size)
                        abort();
                if (digest_equal(whole, s) != (strcmp(whole, s) == 0))
                        abort();
        }

        return 0;
}
