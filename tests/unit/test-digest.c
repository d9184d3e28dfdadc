/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "digest.h"

#define SHA256_EMPTY "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA256_ABC "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA512_ABC                                                                                          \
        "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3" \
        "feebbd454d4423643ce80e2a9ac94fa54ca49f"

static void test_validate_valid(void) {
        DigestAlgorithm a = _DIGEST_ALGORITHM_INVALID;

        g_assert_cmpint(digest_validate(SHA256_ABC, &a), ==, 0);
        g_assert_cmpint(a, ==, DIGEST_SHA256);
        g_assert_cmpint(digest_validate(SHA512_ABC, &a), ==, 0);
        g_assert_cmpint(a, ==, DIGEST_SHA512);
        g_assert_cmpint(digest_validate(SHA256_EMPTY, NULL), ==, 0);
        g_assert_true(digest_is_valid(SHA256_ABC));
        g_assert_cmpstr(digest_hex(SHA256_ABC), ==, SHA256_ABC + 7);
}

static void test_validate_invalid(void) {
        static const char *const bad[] = {
                "",
                "sha256:",
                "sha256",
                /* uppercase hex */
                "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
                "sha256:Ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                /* uppercase algorithm */
                "SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                /* short and long */
                "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a",
                "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0",
                /* sha512 length with sha256 prefix, and vice versa */
                "sha256:"
                "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3"
                "feebbd454d4423643ce80e2a9ac94fa54ca49f",
                "sha512:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                /* other algorithms */
                "sha1:a9993e364706816aba3e25717850c26c9cd0d89d",
                "md5:900150983cd24fb0d6963f7d28e17f72",
                "sha384:"
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c"
                "825a7",
                /* whitespace, separators, traversal */
                " sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad ",
                "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
                "sha256 :ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                "sha256:../../../../../../../../../../../../../../../../../../../../etc/passwd",
                "sha256:ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        };

        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                DigestAlgorithm a = 42;

                g_test_message("bad digest: '%s'", bad[i]);
                g_assert_cmpint(digest_validate(bad[i], &a), ==, -EINVAL);
                g_assert_cmpint(a, ==, 42); /* untouched on failure */
                g_assert_false(digest_is_valid(bad[i]));
        }
        g_assert_cmpint(digest_validate(NULL, NULL), ==, -EINVAL);
}

static void test_buffer(void) {
        char d[DIGEST_STRING_MAX];

        g_assert_cmpint(digest_buffer(DIGEST_SHA256, "abc", 3, d), ==, 0);
        g_assert_cmpstr(d, ==, SHA256_ABC);
        g_assert_cmpint(digest_buffer(DIGEST_SHA512, "abc", 3, d), ==, 0);
        g_assert_cmpstr(d, ==, SHA512_ABC);
        g_assert_cmpint(digest_buffer(DIGEST_SHA256, NULL, 0, d), ==, 0);
        g_assert_cmpstr(d, ==, SHA256_EMPTY);
        g_assert_cmpint(digest_buffer(_DIGEST_ALGORITHM_MAX, "abc", 3, d), <, 0);
}

static void test_hasher_streaming(void) {
        _cleanup_(hasher_freep) Hasher *h = NULL;
        char d[DIGEST_STRING_MAX];

        g_assert_cmpint(hasher_new(DIGEST_SHA256, &h), ==, 0);
        g_assert_cmpint(hasher_update(h, "a", 1), ==, 0);
        g_assert_cmpint(hasher_update(h, "", 0), ==, 0);
        g_assert_cmpint(hasher_update(h, "bc", 2), ==, 0);
        g_assert_cmpuint(hasher_bytes(h), ==, 3);
        g_assert_cmpint(hasher_finish(h, d), ==, 0);
        g_assert_cmpstr(d, ==, SHA256_ABC);

        /* A finished hasher refuses more input rather than silently producing garbage. */
        g_assert_cmpint(hasher_update(h, "x", 1), <, 0);
        g_assert_cmpint(hasher_finish(h, d), <, 0);

        g_assert_null(hasher_free(NULL));
}

static char *make_data(size_t n) {
        char *p = g_malloc(n);

        for (size_t i = 0; i < n; i++)
                p[i] = (char) ((i * 131 + i / 7) & 0xff);
        return p;
}

static void test_fd(void) {
        /* Larger than the 128 KiB read buffer and not a multiple of it. */
        const size_t n = 3 * 128 * 1024 + 12345;
        g_autofree char *data = make_data(n);
        g_autofree char *path = NULL;
        char expected[DIGEST_STRING_MAX], d[DIGEST_STRING_MAX];
        uint64_t size = 0;
        int fd;

        g_assert_cmpint(digest_buffer(DIGEST_SHA256, data, n, expected), ==, 0);

        fd = g_file_open_tmp("berth-digest-XXXXXX", &path, NULL);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(write(fd, data, n), ==, (ssize_t) n);
        g_assert_cmpint(lseek(fd, 0, SEEK_SET), ==, 0);

        g_assert_cmpint(digest_fd(DIGEST_SHA256, fd, d, &size), ==, 0);
        g_assert_cmpstr(d, ==, expected);
        g_assert_cmpuint(size, ==, n);

        /* From the current offset: nothing is left. */
        g_assert_cmpint(digest_fd(DIGEST_SHA256, fd, d, &size), ==, 0);
        g_assert_cmpstr(d, ==, SHA256_EMPTY);
        g_assert_cmpuint(size, ==, 0);

        close(fd);
        unlink(path);

        g_assert_cmpint(digest_fd(DIGEST_SHA256, -1, d, NULL), ==, -EBADF);
}

static void test_fd_pipe(void) {
        char d[DIGEST_STRING_MAX];
        int p[2];

        g_assert_cmpint(pipe(p), ==, 0);
        g_assert_cmpint(write(p[1], "abc", 3), ==, 3);
        close(p[1]);
        g_assert_cmpint(digest_fd(DIGEST_SHA512, p[0], d, NULL), ==, 0);
        g_assert_cmpstr(d, ==, SHA512_ABC);
        close(p[0]);

        /* A write-only fd cannot be read: the error comes back as -errno. */
        g_assert_cmpint(pipe(p), ==, 0);
        g_assert_cmpint(digest_fd(DIGEST_SHA256, p[1], d, NULL), ==, -EBADF);
        close(p[0]);
        close(p[1]);
}

static void test_equal(void) {
        g_assert_true(digest_equal(SHA256_ABC, SHA256_ABC));
        g_assert_false(digest_equal(SHA256_ABC, SHA256_EMPTY));
        g_assert_false(digest_equal(SHA256_ABC, SHA512_ABC));
        g_assert_false(digest_equal(SHA256_ABC, NULL));
        g_assert_false(digest_equal(NULL, NULL));
        /* Invalid strings are never equal, not even to themselves. */
        g_assert_false(digest_equal("sha1:a9993e364706816aba3e25717850c26c9cd0d89d",
                                    "sha1:a9993e364706816aba3e25717850c26c9cd0d89d"));
        g_assert_false(digest_equal(
                "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", SHA256_ABC));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/digest/validate/valid", test_validate_valid);
        g_test_add_func("/digest/validate/invalid", test_validate_invalid);
        g_test_add_func("/digest/buffer", test_buffer);
        g_test_add_func("/digest/hasher", test_hasher_streaming);
        g_test_add_func("/digest/fd", test_fd);
        g_test_add_func("/digest/fd-pipe", test_fd_pipe);
        g_test_add_func("/digest/equal", test_equal);

        return g_test_run();
}
