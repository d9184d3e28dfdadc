/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <glib.h>
#include <string.h>

#include "oci-ref.h"

#define D1 "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

typedef struct {
        const char *input;
        const char *registry, *repository, *tag, *digest;
        const char *string;
} RefCase;

static const RefCase good[] = {
        { "busybox", "docker.io", "library/busybox", "latest", NULL, "docker.io/library/busybox:latest" },
        { "library/busybox:1.36", "docker.io", "library/busybox", "1.36", NULL,
          "docker.io/library/busybox:1.36" },
        { "docker.io/busybox", "docker.io", "library/busybox", "latest", NULL,
          "docker.io/library/busybox:latest" },
        { "docker.io/library/busybox", "docker.io", "library/busybox", "latest", NULL,
          "docker.io/library/busybox:latest" },
        { "index.docker.io/busybox", "docker.io", "library/busybox", "latest", NULL,
          "docker.io/library/busybox:latest" },
        { "registry-1.docker.io/library/busybox:1", "docker.io", "library/busybox", "1", NULL,
          "docker.io/library/busybox:1" },
        { "foo/bar", "docker.io", "foo/bar", "latest", NULL, "docker.io/foo/bar:latest" },
        { "docker.io/foo/bar:v1", "docker.io", "foo/bar", "v1", NULL, "docker.io/foo/bar:v1" },
        { "foo/bar/baz", "docker.io", "foo/bar/baz", "latest", NULL, "docker.io/foo/bar/baz:latest" },
        { "localhost/foo", "localhost", "foo", "latest", NULL, "localhost/foo:latest" },
        { "localhost:5000/x/y@" D1, "localhost:5000", "x/y", NULL, D1, "localhost:5000/x/y@" D1 },
        { "host:5000/a/b/c:tag@" D1, "host:5000", "a/b/c", "tag", D1, "host:5000/a/b/c:tag@" D1 },
        { "quay.io/a/b", "quay.io", "a/b", "latest", NULL, "quay.io/a/b:latest" },
        { "quay.io/single", "quay.io", "single", "latest", NULL, "quay.io/single:latest" },
        { "[::1]:5000/foo:bar", "[::1]:5000", "foo", "bar", NULL, "[::1]:5000/foo:bar" },
        { "[::1]/foo", "[::1]", "foo", "latest", NULL, "[::1]/foo:latest" },
        { "[2001:db8::1]:443/ns/img", "[2001:db8::1]:443", "ns/img", "latest", NULL,
          "[2001:db8::1]:443/ns/img:latest" },
        { "127.0.0.1:5000/foo", "127.0.0.1:5000", "foo", "latest", NULL, "127.0.0.1:5000/foo:latest" },
        { "localhost:65535/foo", "localhost:65535", "foo", "latest", NULL, "localhost:65535/foo:latest" },
        { "localhost:1/foo", "localhost:1", "foo", "latest", NULL, "localhost:1/foo:latest" },
        /* No '/': "localhost:5000" is the official image "localhost" with tag "5000", as in docker. */
        { "localhost:5000", "docker.io", "library/localhost", "5000", NULL,
          "docker.io/library/localhost:5000" },
        { "localhost", "docker.io", "library/localhost", "latest", NULL,
          "docker.io/library/localhost:latest" },
        { "busybox@" D1, "docker.io", "library/busybox", NULL, D1, "docker.io/library/busybox@" D1 },
        { "busybox:1@" D1, "docker.io", "library/busybox", "1", D1, "docker.io/library/busybox:1@" D1 },
        { "foo/a.b-c__d---e_f", "docker.io", "foo/a.b-c__d---e_f", "latest", NULL,
          "docker.io/foo/a.b-c__d---e_f:latest" },
        { "example.com/ns/repo_name:Tag_1.0-rc", "example.com", "ns/repo_name", "Tag_1.0-rc", NULL,
          "example.com/ns/repo_name:Tag_1.0-rc" },
        { "my-registry.example.com:8443/team/app:_x", "my-registry.example.com:8443", "team/app", "_x", NULL,
          "my-registry.example.com:8443/team/app:_x" },
        /* Host names are case-insensitive and keep their spelling; only the repository must be lowercase. */
        { "Example.COM/foo", "Example.COM", "foo", "latest", NULL, "Example.COM/foo:latest" },
        { "0/foo", "docker.io", "0/foo", "latest", NULL, "docker.io/0/foo:latest" },
};

static void test_good(void) {
        for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
                const RefCase *c = &good[i];
                _cleanup_(image_reference_freep) ImageReference *ref = NULL;
                _cleanup_free_ char *error = NULL, *s = NULL, *name = NULL, *expected_name = NULL;
                _cleanup_(image_reference_freep) ImageReference *again = NULL;

                g_test_message("good: '%s'", c->input);
                g_assert_cmpint(image_reference_parse(c->input, &ref, &error), ==, 0);
                g_assert_null(error);
                g_assert_cmpstr(ref->registry, ==, c->registry);
                g_assert_cmpstr(ref->repository, ==, c->repository);
                g_assert_cmpstr(ref->tag, ==, c->tag);
                g_assert_cmpstr(ref->digest, ==, c->digest);

                s = image_reference_to_string(ref);
                g_assert_cmpstr(s, ==, c->string);

                name = image_reference_name(ref);
                expected_name = g_strdup_printf("%s/%s", c->registry, c->repository);
                g_assert_cmpstr(name, ==, expected_name);

                /* Normalisation is idempotent. */
                g_assert_cmpint(image_reference_parse(s, &again, NULL), ==, 0);
                g_assert_cmpstr(again->registry, ==, ref->registry);
                g_assert_cmpstr(again->repository, ==, ref->repository);
                g_assert_cmpstr(again->tag, ==, ref->tag);
                g_assert_cmpstr(again->digest, ==, ref->digest);
        }
}

typedef struct {
        const char *input;
        const char *message; /* substring of the error */
} BadCase;

static const BadCase bad[] = {
        { "", "empty reference" },
        { "Busybox", "repository name must be lowercase" },
        { "foo/Bar", "repository name must be lowercase" },
        { "docker.io/Library/busybox", "repository name must be lowercase" },
        { "localhost:5000/FOO", "repository name must be lowercase" },
        { ":tag", "empty repository name" },
        { "@" D1, "empty repository name" },
        { "foo:", "empty tag" },
        { "foo:.tag", "tags must start" },
        { "foo:-tag", "tags must start" },
        { "foo:bad tag", "tags may contain only" },
        { "foo:a/b", "" },
        { "foo@", "invalid digest" },
        { "foo@sha256:abc", "invalid digest" },
        { "foo@sha1:a9993e364706816aba3e25717850c26c9cd0d89d", "invalid digest" },
        { "foo@sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", "invalid digest" },
        { "foo@" D1 "@" D1, "invalid digest" },
        { "foo//bar", "empty path component" },
        { "foo/", "empty path component" },
        { "/foo", "empty path component" },
        { "quay.io/", "empty repository name" },
        { "quay.io//foo", "empty path component" },
        { "foo/../bar", "" },
        { "foo/./bar", "" },
        { "foo..bar", "consecutive separators" },
        { "foo___bar", "consecutive separators" },
        { "foo__-bar", "consecutive separators" },
        { "foo.-bar", "consecutive separators" },
        { "-foo", "must start" },
        { "_foo", "must start" },
        { "foo-", "must end" },
        { "foo.", "must end" },
        { "foo bar", "" },
        { "foo\nbar", "" },
        { "foo/b@r", "" },
        { "localhost:0/foo", "port out of range" },
        { "localhost:65536/foo", "port out of range" },
        { "localhost:99999/foo", "port out of range" },
        { "localhost:123456/foo", "port out of range" },
        { "localhost:abc/foo", "port must be a decimal number" },
        { "localhost:-1/foo", "port must be a decimal number" },
        { "localhost:/foo", "empty port" },
        { "localhost:05000/foo", "leading zeros" },
        { "host:5000:6000/foo", "port must be a decimal number" },
        { "[::1/foo", "" },
        { "[zz::1]/foo", "invalid IPv6 address" },
        { "[zz]/foo", "must start" }, /* no ':' or '.': not a host, as in docker */
        { "[]:5000/foo", "invalid IPv6 address" },
        { "[::1]x/foo", "unexpected characters after IPv6 address" },
        { "[::1]:0/foo", "port out of range" },
        { "[fe80::1%eth0]:5000/foo", "invalid IPv6 address" },
        { "-host.com/foo", "invalid registry host name" },
        { "host-.com/foo", "invalid registry host name" },
        { "host..com/foo", "invalid registry host name" },
        { ".host.com/foo", "invalid registry host name" },
        { "host.com./foo", "invalid registry host name" },
        { "ho_st.com/foo", "invalid registry host name" },
        { ":5000/foo", "empty registry host" },
        { "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "image id" },
};

static void test_bad(void) {
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                _cleanup_(image_reference_freep) ImageReference *ref = NULL;
                _cleanup_free_ char *error = NULL;

                g_test_message("bad: '%s'", bad[i].input);
                g_assert_cmpint(image_reference_parse(bad[i].input, &ref, &error), ==, -EINVAL);
                g_assert_null(ref);
                g_assert_nonnull(error);
                g_test_message("  → %s", error);
                g_assert_nonnull(strstr(error, bad[i].message));
                g_assert_true(g_str_has_prefix(error, "invalid reference '"));

                /* Without ret_error, just the error code. */
                g_assert_cmpint(image_reference_parse(bad[i].input, &ref, NULL), ==, -EINVAL);
        }
}

static void test_messages_quote_input(void) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        _cleanup_free_ char *error = NULL;

        g_assert_cmpint(image_reference_parse("Busybox", &ref, &error), ==, -EINVAL);
        g_assert_cmpstr(error, ==, "invalid reference 'Busybox': repository name must be lowercase");
        free(error);

        /* Control characters never reach a terminal unescaped. */
        g_assert_cmpint(image_reference_parse("foo\033[31m", &ref, &error), ==, -EINVAL);
        g_assert_null(strchr(error, '\033'));
        g_assert_nonnull(strstr(error, "\\x1b"));
        free(error);

        g_assert_cmpint(image_reference_parse(NULL, &ref, &error), ==, -EINVAL);
        g_assert_nonnull(error);
}

static void test_lengths(void) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        _cleanup_free_ char *error = NULL;
        g_autofree char *name = NULL, *tag = NULL, *s = NULL;

        /* "docker.io/library/" is 18 characters: the whole name may be 255. */
        name = g_strnfill(255 - 18, 'a');
        g_assert_cmpint(image_reference_parse(name, &ref, NULL), ==, 0);
        g_assert_cmpuint(strlen(ref->repository), ==, 255 - 10);
        ref = image_reference_free(ref);
        g_free(name);

        name = g_strnfill(255 - 18 + 1, 'a');
        g_assert_cmpint(image_reference_parse(name, &ref, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "longer than 255"));
        error = mfree(error);
        g_free(name);

        name = g_strnfill(300, 'b');
        g_assert_cmpint(image_reference_parse(name, &ref, NULL), ==, -EINVAL);

        tag = g_strnfill(128, 't');
        s = g_strdup_printf("foo:%s", tag);
        g_assert_cmpint(image_reference_parse(s, &ref, NULL), ==, 0);
        ref = image_reference_free(ref);
        g_free(tag);
        g_free(s);

        tag = g_strnfill(129, 't');
        s = g_strdup_printf("foo:%s", tag);
        g_assert_cmpint(image_reference_parse(s, &ref, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "tag longer"));
        error = mfree(error);
        g_free(s);

        s = g_strnfill(5000, 'c');
        g_assert_cmpint(image_reference_parse(s, &ref, &error), ==, -EINVAL);
        g_assert_nonnull(strstr(error, "longer than 4096"));
        /* The echo of the input is cut short. */
        g_assert_cmpuint(strlen(error), <, 400);
}

static void test_api_host(void) {
        static const struct {
                const char *input, *host;
        } cases[] = {
                { "busybox", "registry-1.docker.io" }, { "index.docker.io/foo/bar", "registry-1.docker.io" },
                { "quay.io/a/b", "quay.io" },          { "localhost:5000/a", "localhost:5000" },
                { "[::1]:5000/a", "[::1]:5000" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                _cleanup_(image_reference_freep) ImageReference *ref = NULL;

                g_assert_cmpint(image_reference_parse(cases[i].input, &ref, NULL), ==, 0);
                g_assert_cmpstr(image_reference_api_host(ref), ==, cases[i].host);
        }

        g_assert_null(image_reference_api_host(NULL));
        g_assert_null(image_reference_to_string(NULL));
        g_assert_null(image_reference_name(NULL));
        g_assert_null(image_reference_free(NULL));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/oci-ref/good", test_good);
        g_test_add_func("/oci-ref/bad", test_bad);
        g_test_add_func("/oci-ref/messages", test_messages_quote_input);
        g_test_add_func("/oci-ref/lengths", test_lengths);
        g_test_add_func("/oci-ref/api-host", test_api_host);

        return g_test_run();
}
