/* SPDX-License-Identifier: LGPL-2.1-or-later */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf(), stpcpy() */
#endif

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"

/* 128 KiB: large enough to amortise read() syscalls, small enough to live on the heap briefly. */
#define DIGEST_FD_BUFFER_SIZE (128U * 1024U)

typedef struct DigestAlgorithmInfo {
        const char *prefix; /* including the ':' */
        size_t prefix_len;
        size_t hex_len;
} DigestAlgorithmInfo;

static const DigestAlgorithmInfo digest_algorithms[_DIGEST_ALGORITHM_MAX] = {
        [DIGEST_SHA256] = { "sha256:", 7, 64 },
        [DIGEST_SHA512] = { "sha512:", 7, 128 },
};

struct Hasher {
        EVP_MD_CTX *ctx;
        DigestAlgorithm algorithm;
        uint64_t bytes;
        bool finished;
};

static bool is_lower_hex(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int digest_validate(const char *s, DigestAlgorithm *ret_algorithm) {
        if (!s)
                return -EINVAL;

        for (DigestAlgorithm a = 0; a < _DIGEST_ALGORITHM_MAX; a++) {
                const DigestAlgorithmInfo *info = &digest_algorithms[a];

                if (strncmp(s, info->prefix, info->prefix_len) != 0)
                        continue;

                /* SECURITY: digests name files in the content store, so only the exact canonical spelling
                 * is accepted: one digest has exactly one string, and no string can carry '/' or '..'. */
                const char *hex = s + info->prefix_len;
                size_t i;
                for (i = 0; i < info->hex_len; i++)
                        if (!is_lower_hex(hex[i]))
                                return -EINVAL;
                if (hex[i] != '\0')
                        return -EINVAL;

                if (ret_algorithm)
                        *ret_algorithm = a;
                return 0;
        }

        return -EINVAL;
}

bool digest_is_valid(const char *s) {
        return digest_validate(s, NULL) >= 0;
}

const char *digest_hex(const char *s) {
        const char *colon;

        if (!s)
                return NULL;
        colon = strchr(s, ':');
        return colon ? colon + 1 : s;
}

static const EVP_MD *digest_algorithm_md(DigestAlgorithm algorithm) {
        switch (algorithm) {
        case DIGEST_SHA256:
                return EVP_sha256();
        case DIGEST_SHA512:
                return EVP_sha512();
        default:
                return NULL;
        }
}

int hasher_new(DigestAlgorithm algorithm, Hasher **ret) {
        const EVP_MD *md;
        Hasher *h;

        if (!ret)
                return -EINVAL;

        md = digest_algorithm_md(algorithm);
        if (!md)
                return -EOPNOTSUPP;

        h = calloc(1, sizeof(Hasher));
        if (!h)
                return -ENOMEM;

        h->algorithm = algorithm;
        h->ctx = EVP_MD_CTX_new();
        if (!h->ctx) {
                free(h);
                return -ENOMEM;
        }

        if (EVP_DigestInit_ex(h->ctx, md, NULL) != 1) {
                hasher_free(h);
                return -EIO;
        }

        *ret = h;
        return 0;
}

int hasher_update(Hasher *h, const void *data, size_t size) {
        if (!h || (!data && size > 0))
                return -EINVAL;
        if (h->finished)
                return -ESTALE;
        if (size == 0)
                return 0;

        if (EVP_DigestUpdate(h->ctx, data, size) != 1)
                return -EIO;

        h->bytes += size;
        return 0;
}

int hasher_finish(Hasher *h, char ret[static DIGEST_STRING_MAX]) {
        static const char hexchars[] = "0123456789abcdef";
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        const DigestAlgorithmInfo *info;
        char *p;

        if (!h)
                return -EINVAL;
        if (h->finished)
                return -ESTALE;

        if (EVP_DigestFinal_ex(h->ctx, md, &len) != 1)
                return -EIO;
        h->finished = true;

        info = &digest_algorithms[h->algorithm];
        if (len * 2 != info->hex_len)
                return -EIO;

        p = stpcpy(ret, info->prefix);
        for (unsigned i = 0; i < len; i++) {
                *p++ = hexchars[md[i] >> 4];
                *p++ = hexchars[md[i] & 0xf];
        }
        *p = '\0';

        return 0;
}

uint64_t hasher_bytes(const Hasher *h) {
        return h ? h->bytes : 0;
}

Hasher *hasher_free(Hasher *h) {
        if (!h)
                return NULL;

        EVP_MD_CTX_free(h->ctx);
        return mfree(h);
}

int digest_buffer(DigestAlgorithm algorithm, const void *data, size_t size,
                  char ret[static DIGEST_STRING_MAX]) {
        _cleanup_(hasher_freep) Hasher *h = NULL;
        int r;

        r = hasher_new(algorithm, &h);
        if (r < 0)
                return r;

        r = hasher_update(h, data, size);
        if (r < 0)
                return r;

        return hasher_finish(h, ret);
}

int digest_fd(DigestAlgorithm algorithm, int fd, char ret[static DIGEST_STRING_MAX], uint64_t *ret_size) {
        _cleanup_(hasher_freep) Hasher *h = NULL;
        _cleanup_free_ void *buf = NULL;
        int r;

        if (fd < 0)
                return -EBADF;

        r = hasher_new(algorithm, &h);
        if (r < 0)
                return r;

        buf = malloc(DIGEST_FD_BUFFER_SIZE);
        if (!buf)
                return -ENOMEM;

        for (;;) {
                ssize_t n;

                n = read(fd, buf, DIGEST_FD_BUFFER_SIZE);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;

                r = hasher_update(h, buf, (size_t) n);
                if (r < 0)
                        return r;
        }

        r = hasher_finish(h, ret);
        if (r < 0)
                return r;

        if (ret_size)
                *ret_size = hasher_bytes(h);
        return 0;
}

bool digest_equal(const char *a, const char *b) {
        DigestAlgorithm aa, ab;

        if (digest_validate(a, &aa) < 0 || digest_validate(b, &ab) < 0)
                return false;
        if (aa != ab)
                return false;

        /* Both are valid and of the same algorithm, so they have the same length. Constant time so a
         * comparison against an expected digest does not leak how many leading characters matched. */
        return CRYPTO_memcmp(a, b, digest_algorithms[aa].prefix_len + digest_algorithms[aa].hex_len) == 0;
}
