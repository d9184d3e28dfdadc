/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>

#include "registry.h"

static void test_urls(void) {
        RegistryEndpoint e = { .base_url = (char *) "https://r.io:5000", .host = (char *) "r.io:5000" };
        RegistryEndpoint m = { .base_url = (char *) "http://mirror",
                               .host = (char *) "mirror",
                               .mirror = true };
        g_autofree char *a = registry_manifest_url(&e, "r.io:5000", "x/y", "latest");
        g_autofree char *b = registry_blob_url(&m, "docker.io", "library/busybox", "sha256:00");
        g_autofree char *c = registry_ping_url(&e);
        g_autofree char *s = registry_pull_scope("x/y");

        g_assert_cmpstr(a, ==, "https://r.io:5000/v2/x/y/manifests/latest");
        g_assert_cmpstr(b, ==, "http://mirror/v2/library/busybox/blobs/sha256:00?ns=docker.io");
        g_assert_cmpstr(c, ==, "https://r.io:5000/v2/");
        g_assert_cmpstr(s, ==, "repository:x/y:pull");
}

static void test_media_types(void) {
        g_autofree char *ct =
                content_type_essence(" application/vnd.oci.image.manifest.v1+json; charset=utf-8");

        g_assert_cmpstr(ct, ==, "application/vnd.oci.image.manifest.v1+json");
        g_assert_true(media_type_is_manifest(ct));
        g_assert_true(media_type_is_manifest("application/vnd.docker.distribution.manifest.list.v2+json"));
        g_assert_false(media_type_is_manifest("application/json"));
        g_assert_false(media_type_is_manifest(NULL));
}

static void test_error_summary(void) {
        const char *body =
                "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest\\nunknown\"}]}";
        g_autofree char *s = registry_error_summary(body, strlen(body));

        g_assert_cmpstr(s, ==, "MANIFEST_UNKNOWN: manifest\\x0aunknown");
        g_assert_null(registry_error_summary("<html>", 6));
        g_assert_null(registry_error_summary("{\"errors\":[]}", 13));
}

static void test_content_range(void) {
        unsigned long long v = 0;

        g_assert_cmpint(content_range_start("bytes 100-199/200", &v), ==, 0);
        g_assert_cmpuint(v, ==, 100);
        g_assert_cmpint(content_range_start("bytes 0-0/*", &v), ==, 0);
        g_assert_cmpint(content_range_start("bytes -5/10", &v), ==, -EBADMSG);
        g_assert_cmpint(content_range_start("bytes 10-5/10", &v), ==, -EBADMSG);
        g_assert_cmpint(content_range_start(NULL, &v), ==, -EBADMSG);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/registry/urls", test_urls);
        g_test_add_func("/registry/media-types", test_media_types);
        g_test_add_func("/registry/error-summary", test_error_summary);
        g_test_add_func("/registry/content-range", test_content_range);
        return g_test_run();
}
