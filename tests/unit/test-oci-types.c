/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <glib.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/utsname.h>

#include "berth-limits.h"
#include "oci-types.h"

#define D1 "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define D2 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define D3 "sha256:0000000000000000000000000000000000000000000000000000000000000003"

#define DESC(mt, d, sz) "{\"mediaType\": \"" mt "\", \"digest\": \"" d "\", \"size\": " #sz "}"
#define PDESC(mt, d, os, arch, variant_json)                                                                \
        "{\"mediaType\": \"" mt "\", \"digest\": \"" d "\", \"size\": 500, \"platform\": {\"os\": \"" os    \
        "\", \"architecture\": \"" arch "\"" variant_json "}}"

static void strv_free_test(char **l) {
        for (char **p = l; p && *p; p++)
                free(*p);
        free(l);
}

/* ---- media types ---- */

static void test_media_types(void) {
        g_assert_cmpint(media_type_kind(MEDIA_TYPE_OCI_INDEX), ==, MEDIA_KIND_INDEX);
        g_assert_cmpint(media_type_kind(MEDIA_TYPE_DOCKER_LIST), ==, MEDIA_KIND_INDEX);
        g_assert_cmpint(media_type_kind(MEDIA_TYPE_OCI_MANIFEST), ==, MEDIA_KIND_MANIFEST);
        g_assert_cmpint(media_type_kind(MEDIA_TYPE_DOCKER_MANIFEST), ==, MEDIA_KIND_MANIFEST);
        g_assert_cmpint(media_type_kind(MEDIA_TYPE_OCI_CONFIG), ==, MEDIA_KIND_CONFIG);
        g_assert_cmpint(media_type_kind(MEDIA_TYPE_DOCKER_CONFIG), ==, MEDIA_KIND_CONFIG);
        g_assert_cmpint(media_type_kind(MEDIA_TYPE_OCI_LAYER), ==, MEDIA_KIND_LAYER);
        g_assert_cmpint(media_type_kind(MEDIA_TYPE_OCI_LAYER_ND_ZSTD), ==, MEDIA_KIND_LAYER);
        g_assert_cmpint(media_type_kind(MEDIA_TYPE_DOCKER_LAYER_FOREIGN_GZIP), ==, MEDIA_KIND_LAYER);
        g_assert_cmpint(media_type_kind("application/json"), ==, _MEDIA_KIND_INVALID);
        g_assert_cmpint(media_type_kind(MEDIA_TYPE_OCI_MANIFEST " "), ==, _MEDIA_KIND_INVALID);
        g_assert_cmpint(media_type_kind(NULL), ==, _MEDIA_KIND_INVALID);

        g_assert_cmpint(media_type_layer_compression(MEDIA_TYPE_OCI_LAYER), ==, LAYER_COMPRESSION_NONE);
        g_assert_cmpint(media_type_layer_compression(MEDIA_TYPE_OCI_LAYER_ND), ==, LAYER_COMPRESSION_NONE);
        g_assert_cmpint(media_type_layer_compression(MEDIA_TYPE_OCI_LAYER_GZIP), ==, LAYER_COMPRESSION_GZIP);
        g_assert_cmpint(media_type_layer_compression(MEDIA_TYPE_DOCKER_LAYER_GZIP), ==,
                        LAYER_COMPRESSION_GZIP);
        g_assert_cmpint(media_type_layer_compression(MEDIA_TYPE_OCI_LAYER_ZSTD), ==, LAYER_COMPRESSION_ZSTD);
        g_assert_cmpint(media_type_layer_compression(MEDIA_TYPE_OCI_CONFIG), ==, _LAYER_COMPRESSION_INVALID);
        g_assert_cmpint(media_type_layer_compression(NULL), ==, _LAYER_COMPRESSION_INVALID);
}

/* ---- platforms ---- */

static void test_platform_parse(void) {
        static const struct {
                const char *input, *os, *arch, *variant, *string;
        } good[] = {
                { "linux/arm64/v8", "linux", "arm64", "v8", "linux/arm64/v8" },
                { "linux/amd64", "linux", "amd64", NULL, "linux/amd64" },
                { "arm64", "linux", "arm64", NULL, "linux/arm64" },
                { "Linux/AMD64", "linux", "amd64", NULL, "linux/amd64" },
                { "linux/x86_64", "linux", "amd64", NULL, "linux/amd64" },
                { "linux/aarch64", "linux", "arm64", NULL, "linux/arm64" },
                { "linux/armhf", "linux", "arm", "v7", "linux/arm/v7" },
                { "linux/arm/7", "linux", "arm", "v7", "linux/arm/v7" },
                { "linux/arm/v6", "linux", "arm", "v6", "linux/arm/v6" },
                { "linux/i686", "linux", "386", NULL, "linux/386" },
                { "linux/ppc64le", "linux", "ppc64le", NULL, "linux/ppc64le" },
                { "linux/s390x", "linux", "s390x", NULL, "linux/s390x" },
                { "riscv64", "linux", "riscv64", NULL, "linux/riscv64" },
                { "windows/amd64", "windows", "amd64", NULL, "windows/amd64" },
        };
        static const char *const bad[] = {
                "",
                "/",
                "linux/",
                "/amd64",
                "linux//amd64",
                "a/b/c/d",
                "linux/amd 64",
                "linux/armhf/v6",
                "linux/amd64\n",
        };

        for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
                _cleanup_(platform_done) Platform p = {};
                _cleanup_free_ char *error = NULL, *s = NULL;

                g_test_message("platform: %s", good[i].input);
                g_assert_cmpint(platform_parse(good[i].input, &p, &error), ==, 0);
                g_assert_null(error);
                g_assert_cmpstr(p.os, ==, good[i].os);
                g_assert_cmpstr(p.architecture, ==, good[i].arch);
                g_assert_cmpstr(p.variant, ==, good[i].variant);
                s = platform_to_string(&p);
                g_assert_cmpstr(s, ==, good[i].string);
        }

        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                _cleanup_(platform_done) Platform p = {};
                _cleanup_free_ char *error = NULL;

                g_test_message("bad platform: '%s'", bad[i]);
                g_assert_cmpint(platform_parse(bad[i], &p, &error), ==, -EINVAL);
                g_assert_nonnull(error);
                g_assert_true(g_str_has_prefix(error, "invalid platform '"));
                g_assert_null(p.os);
        }
}

static void test_platform_default(void) {
        _cleanup_(platform_done) Platform p = {}, linux_only = {};
        struct utsname u;

        g_assert_cmpint(uname(&u), ==, 0);
        g_assert_cmpint(platform_default(&p), ==, 0);
        g_assert_cmpstr(p.os, ==, "linux");
        g_assert_nonnull(p.architecture);

        if (strcmp(u.machine, "x86_64") == 0) {
                g_assert_cmpstr(p.architecture, ==, "amd64");
                g_assert_null(p.variant);
        } else if (strcmp(u.machine, "aarch64") == 0) {
                g_assert_cmpstr(p.architecture, ==, "arm64");
                g_assert_cmpstr(p.variant, ==, "v8");
        } else if (strcmp(u.machine, "armv7l") == 0) {
                g_assert_cmpstr(p.architecture, ==, "arm");
                g_assert_cmpstr(p.variant, ==, "v7");
        }

        /* A lone "linux" means this machine. */
        g_assert_cmpint(platform_parse("linux", &linux_only, NULL), ==, 0);
        g_assert_cmpstr(linux_only.architecture, ==, p.architecture);
        g_assert_cmpstr(linux_only.variant, ==, p.variant);
}

static bool matches(const char *os, const char *arch, const char *variant, const char *cos,
                    const char *carch, const char *cvariant) {
        Platform w = { .os = (char *) os, .architecture = (char *) arch, .variant = (char *) variant };
        Platform c = { .os = (char *) cos, .architecture = (char *) carch, .variant = (char *) cvariant };

        return platform_matches(&w, &c);
}

static void test_platform_matches(void) {
        g_assert_true(matches("linux", "amd64", NULL, "linux", "amd64", NULL));
        g_assert_true(matches("linux", "amd64", NULL, "linux", "amd64", "v3"));
        g_assert_true(matches("linux", "amd64", "v2", "linux", "amd64", NULL));
        g_assert_true(matches("linux", "arm64", "v8", "linux", "arm64", NULL));
        g_assert_true(matches("linux", "arm64", NULL, "linux", "arm64", "v8"));
        g_assert_true(matches("linux", "arm64", "v8", "linux", "aarch64", NULL));
        g_assert_true(matches("linux", "arm", "v7", "linux", "arm", "v7"));
        g_assert_true(matches("linux", "arm", "v7", "linux", "arm", "7"));
        g_assert_true(matches("linux", "arm", NULL, "linux", "arm", "v6"));
        g_assert_true(matches(NULL, "amd64", NULL, "linux", "amd64", NULL));

        g_assert_false(matches("linux", "amd64", NULL, "windows", "amd64", NULL));
        g_assert_false(matches("linux", "amd64", NULL, "linux", "arm64", NULL));
        g_assert_false(matches("linux", "arm", "v7", "linux", "arm", "v6"));
        g_assert_false(matches("linux", "arm", "v7", "linux", "arm", NULL));
        g_assert_false(matches("linux", "arm64", "v8", "linux", "arm64", "v9"));
        g_assert_false(matches("linux", "arm64", NULL, "linux", "arm", "v8"));
        g_assert_false(matches("linux", "amd64", NULL, "unknown", "unknown", NULL));
        g_assert_false(matches("linux", "amd64", NULL, "linux", NULL, NULL));
}

/* ---- index ---- */

#define OCI_INDEX_DOC                                                                                                              \
        "{\"schemaVersion\": 2, \"mediaType\": \"" MEDIA_TYPE_OCI_INDEX                                                            \
        "\", \"manifests\": [" PDESC(MEDIA_TYPE_OCI_MANIFEST, D1, "linux", "amd64", "") ", " PDESC(                                \
                MEDIA_TYPE_OCI_MANIFEST, D2, "linux", "arm64",                                                                     \
                ", \"variant\": \"v8\"") ", " PDESC(MEDIA_TYPE_OCI_MANIFEST, D3, "linux", "arm",                                   \
                                                    ", \"variant\": \"v7\"") ", " PDESC(MEDIA_TYPE_OCI_MANIFEST,                   \
                                                                                        D1, "linux", "arm",                        \
                                                                                        ", \"variant\": "                          \
                                                                                        "\"v6\"") ","                              \
                                                                                                  " " PDESC(                       \
                                                                                                          MEDIA_TYPE_OCI_MANIFEST, \
                                                                                                          D2,                      \
                                                                                                          "unknown",               \
                                                                                                          "unknown",               \
                                                                                                          "") "], "                \
                                                                                                              "\"annotations\": {\"org.opencontainers.image.ref.name\": \"x\"}}"

static void test_index_parse(void) {
        _cleanup_(oci_index_freep) OciIndex *index = NULL;
        _cleanup_free_ char *error = NULL;
        const char *doc = OCI_INDEX_DOC;

        g_assert_cmpint(oci_index_parse(doc, strlen(doc), NULL, &index, &error), ==, 0);
        g_assert_null(error);
        g_assert_cmpstr(index->media_type, ==, MEDIA_TYPE_OCI_INDEX);
        g_assert_cmpuint(index->n_manifests, ==, 5);
        g_assert_cmpstr(index->manifests[1].digest, ==, D2);
        g_assert_cmpuint(index->manifests[1].size, ==, 500);
        g_assert_true(index->manifests[1].has_platform);
        g_assert_cmpstr(index->manifests[1].platform.architecture, ==, "arm64");
        g_assert_cmpstr(index->manifests[1].platform.variant, ==, "v8");
        index = oci_index_free(index);

        /* Declared and embedded agree; Content-Type parameters are ignored. */
        g_assert_cmpint(oci_index_parse(doc, strlen(doc), MEDIA_TYPE_OCI_INDEX, &index, NULL), ==, 0);
        index = oci_index_free(index);
        g_assert_cmpint(
                oci_index_parse(doc, strlen(doc), MEDIA_TYPE_OCI_INDEX "; charset=utf-8", &index, NULL), ==,
                0);
        index = oci_index_free(index);

        /* Docker manifest list without platform on one entry, no embedded type but a declared one. */
        const char *docker = "{\"schemaVersion\": 2, \"manifests\": [" PDESC(
                MEDIA_TYPE_DOCKER_MANIFEST, D1, "linux", "amd64", "") ", " DESC(MEDIA_TYPE_DOCKER_MANIFEST,
                                                                                D2, 7) "]}";
        g_assert_cmpint(oci_index_parse(docker, strlen(docker), MEDIA_TYPE_DOCKER_LIST, &index, &error), ==,
                        0);
        g_assert_cmpstr(index->media_type, ==, MEDIA_TYPE_DOCKER_LIST);
        g_assert_false(index->manifests[1].has_platform);
        index = oci_index_free(index);

        /* Empty index is a valid document (selection then finds nothing). */
        const char *empty = "{\"schemaVersion\": 2, \"manifests\": []}";
        g_assert_cmpint(oci_index_parse(empty, strlen(empty), NULL, &index, NULL), ==, 0);
        g_assert_cmpuint(index->n_manifests, ==, 0);
}

typedef struct {
        const char *doc;
        const char *declared;
        int error;
        const char *message;
} BadDoc;

static void check_bad_index(const BadDoc *c) {
        _cleanup_(oci_index_freep) OciIndex *index = NULL;
        _cleanup_free_ char *error = NULL;

        g_test_message("bad index: %.200s (declared %s)", c->doc, c->declared ?: "-");
        g_assert_cmpint(oci_index_parse(c->doc, strlen(c->doc), c->declared, &index, &error), ==, c->error);
        g_assert_null(index);
        g_assert_nonnull(error);
        g_test_message("  → %s", error);
        g_assert_nonnull(strstr(error, c->message));
}

static void test_index_bad(void) {
        static const BadDoc cases[] = {
                { "[]", NULL, -EBADMSG, "must be a JSON object" },
                { "{\"manifests\": []}", NULL, -EBADMSG, "missing field 'schemaVersion'" },
                { "{\"schemaVersion\": \"2\", \"manifests\": []}", NULL, -EBADMSG, "schemaVersion" },
                { "{\"schemaVersion\": 3, \"manifests\": []}", NULL, -EBADMSG,
                  "unsupported schemaVersion 3" },
                { "{\"schemaVersion\": 1, \"name\": \"x\", \"fsLayers\": []}", NULL, -EPROTONOSUPPORT,
                  "Docker schema 1 manifests are not supported" },
                { "{\"schemaVersion\": 2}", NULL, -EBADMSG, "missing field 'manifests'" },
                { "{\"schemaVersion\": 2, \"manifests\": {}}", NULL, -EBADMSG, "field 'manifests'" },
                { "{\"schemaVersion\": 2, \"manifests\": [1]}", NULL, -EBADMSG, "manifests[0]" },
                /* A manifest where an index was expected, by declaration, by mediaType, by shape. */
                { "{\"schemaVersion\": 2, \"manifests\": []}", MEDIA_TYPE_OCI_MANIFEST, -EMEDIUMTYPE,
                  "expected an image index" },
                { "{\"schemaVersion\": 2, \"mediaType\": \"" MEDIA_TYPE_DOCKER_MANIFEST
                  "\", \"manifests\": []}",
                  NULL, -EMEDIUMTYPE, "is an image manifest" },
                { "{\"schemaVersion\": 2, \"config\": " DESC(MEDIA_TYPE_OCI_CONFIG, D1,
                                                             1) ", \"layers\": []}",
                  NULL, -EMEDIUMTYPE, "expected an image index" },
                { "{\"schemaVersion\": 2, \"manifests\": [], \"layers\": []}", NULL, -EMEDIUMTYPE,
                  "expected an image index" },
                /* Declared and embedded disagree, even if both are indexes. */
                { "{\"schemaVersion\": 2, \"mediaType\": \"" MEDIA_TYPE_DOCKER_LIST "\", \"manifests\": []}",
                  MEDIA_TYPE_OCI_INDEX, -EMEDIUMTYPE, "does not match" },
                { "{\"schemaVersion\": 2, \"manifests\": []}", "text/html", -EMEDIUMTYPE,
                  "unsupported declared media type 'text/html'" },
                { "{\"schemaVersion\": 2, \"manifests\": []}",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws", -EPROTONOSUPPORT,
                  "schema 1" },
                { "{\"schemaVersion\": 2, \"mediaType\": \"application/evil\", \"manifests\": []}", NULL,
                  -EMEDIUMTYPE, "unsupported document's media type 'application/evil'" },
                /* Bad descriptors. */
                { "{\"schemaVersion\": 2, \"manifests\": [" DESC(MEDIA_TYPE_OCI_MANIFEST, "sha256:abc",
                                                                 1) "]}",
                  NULL, -EBADMSG, "manifests[0]: invalid digest 'sha256:abc'" },
                { "{\"schemaVersion\": 2, \"manifests\": [" DESC(
                          MEDIA_TYPE_OCI_MANIFEST, "sha1:a9993e364706816aba3e25717850c26c9cd0d89d", 1) "]}",
                  NULL, -EBADMSG, "invalid digest" },
                { "{\"schemaVersion\": 2, \"manifests\": [" DESC(MEDIA_TYPE_OCI_MANIFEST, D1, -1) "]}", NULL,
                  -EBADMSG, "field 'size' must be a non-negative integer" },
                { "{\"schemaVersion\": 2, \"manifests\": [" DESC(MEDIA_TYPE_OCI_MANIFEST, D1, 1.5) "]}",
                  NULL, -EBADMSG, "field 'size'" },
                { "{\"schemaVersion\": 2, \"manifests\": [" DESC(MEDIA_TYPE_OCI_MANIFEST, D1,
                                                                 68719476737) "]}",
                  NULL, -EFBIG, "exceeds the limit" },
                { "{\"schemaVersion\": 2, \"manifests\": [{\"digest\": \"" D1 "\", \"size\": 1}]}", NULL,
                  -EBADMSG, "missing field 'mediaType'" },
                { "{\"schemaVersion\": 2, \"manifests\": [{\"mediaType\": \"" MEDIA_TYPE_OCI_MANIFEST
                  "\", \"size\": 1}]}",
                  NULL, -EBADMSG, "missing field 'digest'" },
                { "{\"schemaVersion\": 2, \"manifests\": [{\"mediaType\": \"" MEDIA_TYPE_OCI_MANIFEST
                  "\", \"digest\": \"" D1 "\"}]}",
                  NULL, -EBADMSG, "missing field 'size'" },
                { "{\"schemaVersion\": 2, \"manifests\": [" DESC("not a media type", D1, 1) "]}", NULL,
                  -EBADMSG, "invalid media type" },
                { "{\"schemaVersion\": 2, \"manifests\": [{\"mediaType\": \"" MEDIA_TYPE_OCI_MANIFEST
                  "\", \"digest\": \"" D1 "\", \"size\": 1, \"platform\": {\"os\": \"linux\"}}]}",
                  NULL, -EBADMSG, "missing field 'architecture'" },
                { "{\"schemaVersion\": 2, \"manifests\": [{\"mediaType\": \"" MEDIA_TYPE_OCI_MANIFEST
                  "\", \"digest\": \"" D1 "\", \"size\": 1, \"platform\": \"linux/amd64\"}]}",
                  NULL, -EBADMSG, "field 'platform'" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
                check_bad_index(&cases[i]);
}

static char *index_with_entries(size_t n) {
        GString *s = g_string_new("{\"schemaVersion\": 2, \"manifests\": [");

        for (size_t i = 0; i < n; i++)
                g_string_append_printf(s, "%s" PDESC(MEDIA_TYPE_OCI_MANIFEST, D1, "linux", "amd64", ""),
                                       i ? "," : "");
        g_string_append(s, "]}");
        return g_string_free(s, false);
}

static void test_index_limits(void) {
        _cleanup_(oci_index_freep) OciIndex *index = NULL;
        _cleanup_free_ char *error = NULL;
        g_autofree char *ok = index_with_entries(INDEX_MANIFESTS_MAX);
        g_autofree char *too_many = index_with_entries(INDEX_MANIFESTS_MAX + 1);
        g_autofree char *huge = NULL;

        g_assert_cmpint(oci_index_parse(ok, strlen(ok), NULL, &index, NULL), ==, 0);
        g_assert_cmpuint(index->n_manifests, ==, INDEX_MANIFESTS_MAX);
        index = oci_index_free(index);

        g_assert_cmpint(oci_index_parse(too_many, strlen(too_many), NULL, &index, &error), ==, -E2BIG);
        g_assert_nonnull(strstr(error, "too many manifests"));
        error = mfree(error);

        /* Over MANIFEST_SIZE_MAX: refused before parsing. */
        huge = g_malloc(MANIFEST_SIZE_MAX + 2);
        memset(huge, ' ', MANIFEST_SIZE_MAX + 1);
        huge[0] = '{';
        huge[MANIFEST_SIZE_MAX] = '}';
        huge[MANIFEST_SIZE_MAX + 1] = '\0';
        g_assert_cmpint(oci_index_parse(huge, MANIFEST_SIZE_MAX + 1, NULL, &index, &error), ==, -EFBIG);
        error = mfree(error);

        /* Embedded NUL and depth bombs come back as errors from json-util. */
        static const char nul[] = "{\"schemaVersion\": 2,\0 \"manifests\": []}";
        g_assert_cmpint(oci_index_parse(nul, sizeof(nul) - 1, NULL, &index, &error), ==, -EBADMSG);
        error = mfree(error);

        g_autofree char *deep = g_strnfill(100000, '[');
        g_assert_cmpint(oci_index_parse(deep, strlen(deep), NULL, &index, &error), ==, -ELOOP);
}

/* ---- selection ---- */

static void test_index_select(void) {
        _cleanup_(oci_index_freep) OciIndex *index = NULL;
        const char *doc = OCI_INDEX_DOC;
        static const struct {
                const char *platform;
                size_t entry;
        } cases[] = {
                { "linux/amd64", 0 },   { "linux/amd64/v3", 0 },
                { "linux/arm64", 1 },   { "linux/arm64/v8", 1 },
                { "linux/aarch64", 1 }, { "linux/arm/v7", 2 },
                { "linux/arm/v6", 3 },  { "linux/armhf", 2 },
                { "linux/arm", 2 }, /* no variant wanted: the first listed */
        };

        g_assert_cmpint(oci_index_parse(doc, strlen(doc), NULL, &index, NULL), ==, 0);

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                _cleanup_(platform_done) Platform p = {};
                const Descriptor *d = NULL;

                g_test_message("select %s", cases[i].platform);
                g_assert_cmpint(platform_parse(cases[i].platform, &p, NULL), ==, 0);
                g_assert_cmpint(oci_index_select(index, &p, &d, NULL), ==, 0);
                g_assert_true(d == &index->manifests[cases[i].entry]);
        }

        _cleanup_(platform_done) Platform p = {};
        _cleanup_free_ char *error = NULL;
        const Descriptor *d = NULL;

        g_assert_cmpint(platform_parse("linux/386", &p, NULL), ==, 0);
        g_assert_cmpint(oci_index_select(index, &p, &d, &error), ==, -ENOENT);
        g_assert_null(d);
        g_test_message("%s", error);
        g_assert_cmpstr(
                error, ==,
                "no manifest for platform linux/386 in the index; available: linux/amd64, linux/arm64/v8, "
                "linux/arm/v7, linux/arm/v6, unknown/unknown");
        platform_done(&p);
        error = mfree(error);

        /* Indexes can list nested indexes or artifacts: they are never selected. */
        const char *nested = "{\"schemaVersion\": 2, \"manifests\": [" PDESC(MEDIA_TYPE_OCI_INDEX, D1,
                                                                             "linux", "amd64", "") "]}";
        index = oci_index_free(index);
        g_assert_cmpint(oci_index_parse(nested, strlen(nested), NULL, &index, NULL), ==, 0);
        g_assert_cmpint(platform_parse("linux/amd64", &p, NULL), ==, 0);
        g_assert_cmpint(oci_index_select(index, &p, &d, &error), ==, -ENOENT);
        g_assert_nonnull(strstr(error, "available: none"));
}

/* ---- manifest ---- */

#define LAYER_GZ(d) DESC(MEDIA_TYPE_OCI_LAYER_GZIP, d, 1234)

static char *manifest_doc(const char *media_type, const char *config_type, const char *layers) {
        return g_strdup_printf(
                "{\"schemaVersion\": 2%s%s%s, \"config\": {\"mediaType\": \"%s\", \"digest\": \"" D3
                "\", \"size\": 7023}, \"layers\": [%s]}",
                media_type ? ", \"mediaType\": \"" : "", media_type ?: "", media_type ? "\"" : "",
                config_type, layers);
}

static void test_manifest_parse(void) {
        _cleanup_(oci_manifest_freep) OciManifest *m = NULL;
        _cleanup_free_ char *error = NULL;
        g_autofree char *doc = manifest_doc(MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_OCI_CONFIG,
                                            LAYER_GZ(D1) ", " DESC(MEDIA_TYPE_OCI_LAYER_ZSTD, D2, 0));
        g_autofree char *docker = manifest_doc(
                NULL, MEDIA_TYPE_DOCKER_CONFIG,
                DESC(MEDIA_TYPE_DOCKER_LAYER_GZIP, D1,
                     5) ", "
                        "{\"mediaType\": \"" MEDIA_TYPE_DOCKER_LAYER_FOREIGN_GZIP "\", \"digest\": \"" D2
                        "\", \"size\": 6, \"urls\": [\"https://example.com/layer\"]}");
        g_autofree char *empty = manifest_doc(MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_OCI_CONFIG, "");

        g_assert_cmpint(oci_manifest_parse(doc, strlen(doc), MEDIA_TYPE_OCI_MANIFEST, &m, &error), ==, 0);
        g_assert_null(error);
        g_assert_cmpstr(m->media_type, ==, MEDIA_TYPE_OCI_MANIFEST);
        g_assert_cmpstr(m->config.media_type, ==, MEDIA_TYPE_OCI_CONFIG);
        g_assert_cmpstr(m->config.digest, ==, D3);
        g_assert_cmpuint(m->config.size, ==, 7023);
        g_assert_cmpuint(m->n_layers, ==, 2);
        g_assert_cmpstr(m->layers[0].digest, ==, D1);
        g_assert_cmpuint(m->layers[0].size, ==, 1234);
        g_assert_cmpint(media_type_layer_compression(m->layers[1].media_type), ==, LAYER_COMPRESSION_ZSTD);
        g_assert_cmpuint(m->layers[1].size, ==, 0);
        m = oci_manifest_free(m);

        g_assert_cmpint(oci_manifest_parse(docker, strlen(docker), MEDIA_TYPE_DOCKER_MANIFEST, &m, &error),
                        ==, 0);
        g_assert_cmpstr(m->media_type, ==, MEDIA_TYPE_DOCKER_MANIFEST);
        g_assert_null(m->layers[0].urls);
        g_assert_nonnull(m->layers[1].urls);
        g_assert_cmpstr(m->layers[1].urls[0], ==, "https://example.com/layer");
        m = oci_manifest_free(m);

        /* No type anywhere: the shape decides. */
        g_assert_cmpint(oci_manifest_parse(docker, strlen(docker), NULL, &m, NULL), ==, 0);
        g_assert_null(m->media_type);
        m = oci_manifest_free(m);

        g_assert_cmpint(oci_manifest_parse(empty, strlen(empty), NULL, &m, NULL), ==, 0);
        g_assert_cmpuint(m->n_layers, ==, 0);
}

static void check_bad_manifest(const char *doc, const char *declared, int expected, const char *message) {
        _cleanup_(oci_manifest_freep) OciManifest *m = NULL;
        _cleanup_free_ char *error = NULL;

        g_test_message("bad manifest: %.300s (declared %s)", doc, declared ?: "-");
        g_assert_cmpint(oci_manifest_parse(doc, strlen(doc), declared, &m, &error), ==, expected);
        g_assert_null(m);
        g_assert_nonnull(error);
        g_test_message("  → %s", error);
        g_assert_nonnull(strstr(error, message));
}

static void test_manifest_bad(void) {
        g_autofree char *ok = manifest_doc(MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_OCI_CONFIG, LAYER_GZ(D1));
        g_autofree char *config_is_layer = manifest_doc(NULL, MEDIA_TYPE_OCI_LAYER, LAYER_GZ(D1));
        g_autofree char *config_is_manifest = manifest_doc(NULL, MEDIA_TYPE_OCI_MANIFEST, LAYER_GZ(D1));
        g_autofree char *unknown_layer = manifest_doc(NULL, MEDIA_TYPE_OCI_CONFIG,
                                                      LAYER_GZ(D1) ", " DESC("application/x-evil", D2, 1));
        g_autofree char *config_layer_type =
                manifest_doc(NULL, MEDIA_TYPE_OCI_CONFIG, DESC(MEDIA_TYPE_OCI_CONFIG, D2, 1));
        g_autofree char *negative =
                manifest_doc(NULL, MEDIA_TYPE_OCI_CONFIG, DESC(MEDIA_TYPE_OCI_LAYER, D2, -5));
        g_autofree char *bad_digest = manifest_doc(
                NULL, MEDIA_TYPE_OCI_CONFIG,
                DESC(MEDIA_TYPE_OCI_LAYER,
                     "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", 5));
        g_autofree char *index_type =
                manifest_doc(MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_CONFIG, LAYER_GZ(D1));
        g_autofree char *docker_in_oci =
                manifest_doc(MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_OCI_CONFIG, LAYER_GZ(D1));
        const char *oci_index = OCI_INDEX_DOC;

        check_bad_manifest(config_is_layer, NULL, -EMEDIUMTYPE, "unsupported config media type");
        check_bad_manifest(config_is_manifest, NULL, -EMEDIUMTYPE, "unsupported config media type");
        check_bad_manifest(unknown_layer, NULL, -EMEDIUMTYPE,
                           "layers[1]: unsupported layer media type 'application/x-evil'");
        check_bad_manifest(config_layer_type, NULL, -EMEDIUMTYPE, "unsupported layer media type");
        check_bad_manifest(negative, NULL, -EBADMSG,
                           "layers[0]: field 'size' must be a non-negative integer");
        check_bad_manifest(bad_digest, NULL, -EBADMSG, "layers[0]: invalid digest");
        check_bad_manifest(index_type, NULL, -EMEDIUMTYPE, "is an image index");
        check_bad_manifest(ok, MEDIA_TYPE_OCI_INDEX, -EMEDIUMTYPE, "expected an image manifest");
        check_bad_manifest(ok, MEDIA_TYPE_DOCKER_MANIFEST, -EMEDIUMTYPE, "does not match");
        check_bad_manifest(docker_in_oci, MEDIA_TYPE_OCI_MANIFEST, -EMEDIUMTYPE, "does not match");
        check_bad_manifest(oci_index, NULL, -EMEDIUMTYPE,
                           "expected an image manifest, but the document's media type");
        check_bad_manifest(oci_index, MEDIA_TYPE_OCI_MANIFEST, -EMEDIUMTYPE, "is an image index");
        check_bad_manifest(ok, MEDIA_TYPE_OCI_CONFIG, -EMEDIUMTYPE, "is an image config");
        check_bad_manifest("{\"schemaVersion\": 2, \"layers\": []}", NULL, -EBADMSG,
                           "missing field 'config'");
        check_bad_manifest("{\"schemaVersion\": 2, \"config\": " DESC(MEDIA_TYPE_OCI_CONFIG, D1, 1) "}",
                           NULL, -EBADMSG, "missing field 'layers'");
        check_bad_manifest("{\"schemaVersion\": 2, \"config\": " DESC(MEDIA_TYPE_OCI_CONFIG, D1,
                                                                      1) ", \"layers\": null}",
                           NULL, -EBADMSG, "layers");
        check_bad_manifest("{\"schemaVersion\": 2, \"config\": [], \"layers\": []}", NULL, -EBADMSG,
                           "field 'config'");
        check_bad_manifest(
                "{\"schemaVersion\": 1, \"name\": \"library/busybox\", \"tag\": \"latest\", "
                "\"architecture\": \"amd64\", \"fsLayers\": [], \"history\": [], \"signatures\": []}",
                NULL, -EPROTONOSUPPORT, "Docker schema 1 manifests are not supported");
        check_bad_manifest(ok, "application/vnd.docker.distribution.manifest.v1+json", -EPROTONOSUPPORT,
                           "Docker schema 1 manifests are not supported");
        check_bad_manifest("{\"schemaVersion\": 2.0, \"layers\": []}", NULL, -EBADMSG, "schemaVersion");
        check_bad_manifest("\"just a string\"", NULL, -EBADMSG, "JSON object");
        check_bad_manifest("{\"schemaVersion\": 2, \"config\": {", NULL, -EBADMSG, "invalid JSON");
        /* Hostile media types are escaped in messages. */
        check_bad_manifest("{\"schemaVersion\": 2, \"mediaType\": \"\\u001b[2J\"}", NULL, -EMEDIUMTYPE,
                           "\\x1b[2J");
}

static char *manifest_with_layers(size_t n) {
        GString *s = g_string_new(NULL);

        for (size_t i = 0; i < n; i++)
                g_string_append_printf(s, "%s" LAYER_GZ(D1), i ? "," : "");
        g_autofree char *layers = g_string_free(s, false);
        return manifest_doc(NULL, MEDIA_TYPE_OCI_CONFIG, layers);
}

static void test_manifest_limits(void) {
        _cleanup_(oci_manifest_freep) OciManifest *m = NULL;
        _cleanup_free_ char *error = NULL;
        g_autofree char *ok = manifest_with_layers(LAYERS_MAX);
        g_autofree char *too_many = manifest_with_layers(LAYERS_MAX + 1);

        g_assert_cmpint(oci_manifest_parse(ok, strlen(ok), NULL, &m, NULL), ==, 0);
        g_assert_cmpuint(m->n_layers, ==, LAYERS_MAX);
        m = oci_manifest_free(m);

        g_assert_cmpint(oci_manifest_parse(too_many, strlen(too_many), NULL, &m, &error), ==, -E2BIG);
        g_assert_nonnull(strstr(error, "too many layers"));
}

/* ---- config ---- */

#define CONFIG_DOC                                                                                          \
        "{\"created\": \"2024-01-01T00:00:00Z\", \"architecture\": \"arm64\", \"variant\": \"v8\", "        \
        "\"os\": \"linux\", \"config\": {\"User\": \"1000:1000\", \"Env\": [\"PATH=/bin\", \"A=b=c\"], "    \
        "\"Entrypoint\": [\"/bin/sh\", \"-c\"], \"Cmd\": [\"echo hi\"], \"WorkingDir\": \"/srv\", "         \
        "\"Labels\": {\"a\": \"1\", \"b\": \"x=y\"}, \"ExposedPorts\": {\"80/tcp\": {}, \"53/udp\": {}}, "  \
        "\"StopSignal\": \"SIGTERM\", \"Volumes\": {\"/data\": {}}}, "                                      \
        "\"rootfs\": {\"type\": \"layers\", \"diff_ids\": [\"" D1 "\", \"" D2 "\"]}, "                      \
        "\"history\": [{\"created_by\": \"x\"}]}"

/* Docker writes null for absent lists. */
#define DOCKER_CONFIG_DOC                                                                                   \
        "{\"architecture\": \"amd64\", \"os\": \"linux\", \"config\": {\"Hostname\": \"\", \"User\": "      \
        "\"\", "                                                                                            \
        "\"Env\": null, \"Cmd\": null, \"Entrypoint\": null, \"Labels\": null, \"WorkingDir\": \"\", "      \
        "\"ExposedPorts\": null}, \"rootfs\": {\"type\": \"layers\", \"diff_ids\": []}}"

static void test_config_parse(void) {
        _cleanup_(oci_image_config_freep) OciImageConfig *c = NULL;
        _cleanup_free_ char *error = NULL;
        const char *doc = CONFIG_DOC, *docker = DOCKER_CONFIG_DOC;

        g_assert_cmpint(oci_image_config_parse(doc, strlen(doc), &c, &error), ==, 0);
        g_assert_null(error);
        g_assert_cmpstr(c->platform.os, ==, "linux");
        g_assert_cmpstr(c->platform.architecture, ==, "arm64");
        g_assert_cmpstr(c->platform.variant, ==, "v8");
        g_assert_cmpuint(c->n_diff_ids, ==, 2);
        g_assert_cmpstr(c->diff_ids[0], ==, D1);
        g_assert_cmpstr(c->diff_ids[1], ==, D2);
        g_assert_null(c->diff_ids[2]);
        g_assert_cmpstr(c->env[1], ==, "A=b=c");
        g_assert_cmpstr(c->entrypoint[0], ==, "/bin/sh");
        g_assert_cmpstr(c->cmd[0], ==, "echo hi");
        g_assert_cmpstr(c->working_dir, ==, "/srv");
        g_assert_cmpstr(c->user, ==, "1000:1000");
        g_assert_cmpstr(c->created, ==, "2024-01-01T00:00:00Z");
        g_assert_cmpstr(c->stop_signal, ==, "SIGTERM");
        g_assert_nonnull(c->labels);
        g_assert_true(g_strv_contains((const char *const *) c->labels, "a=1"));
        g_assert_true(g_strv_contains((const char *const *) c->labels, "b=x=y"));
        g_assert_true(g_strv_contains((const char *const *) c->exposed_ports, "80/tcp"));
        g_assert_true(g_strv_contains((const char *const *) c->exposed_ports, "53/udp"));
        c = oci_image_config_free(c);

        g_assert_cmpint(oci_image_config_parse(docker, strlen(docker), &c, &error), ==, 0);
        g_assert_null(c->env);
        g_assert_null(c->cmd);
        g_assert_null(c->labels);
        g_assert_cmpuint(c->n_diff_ids, ==, 0);
        g_assert_cmpstr(c->user, ==, "");
        c = oci_image_config_free(c);

        /* No "config" at all is fine. */
        const char *minimal =
                "{\"architecture\": \"amd64\", \"os\": \"linux\", \"rootfs\": {\"type\": \"layers\", "
                "\"diff_ids\": [\"" D1 "\"]}}";
        g_assert_cmpint(oci_image_config_parse(minimal, strlen(minimal), &c, NULL), ==, 0);
        g_assert_null(c->entrypoint);
}

static void test_config_bad(void) {
        static const struct {
                const char *doc;
                int error;
                const char *message;
        } cases[] = {
                { "{\"architecture\": \"amd64\", \"os\": \"linux\"}", -EBADMSG, "missing field 'rootfs'" },
                { "{\"os\": \"linux\", \"rootfs\": {\"type\": \"layers\", \"diff_ids\": []}}", -EBADMSG,
                  "missing field 'architecture'" },
                { "{\"architecture\": \"amd64\", \"os\": \"linux\", \"rootfs\": {\"type\": \"tarball\", "
                  "\"diff_ids\": []}}",
                  -EBADMSG, "unsupported rootfs type 'tarball'" },
                { "{\"architecture\": \"amd64\", \"os\": \"linux\", \"rootfs\": {\"diff_ids\": []}}",
                  -EBADMSG, "field 'rootfs': missing field 'type'" },
                { "{\"architecture\": \"amd64\", \"os\": \"linux\", \"rootfs\": {\"type\": \"layers\"}}",
                  -EBADMSG, "missing field 'diff_ids'" },
                { "{\"architecture\": \"amd64\", \"os\": \"linux\", \"rootfs\": {\"type\": \"layers\", "
                  "\"diff_ids\": [\"" D1 "\", \"sha256:abc\"]}}",
                  -EBADMSG, "diff_ids[1]: invalid digest 'sha256:abc'" },
                { "{\"architecture\": \"amd64\", \"os\": \"linux\", \"rootfs\": {\"type\": \"layers\", "
                  "\"diff_ids\": "
                  "[\"SHA256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\"]}}",
                  -EBADMSG, "invalid digest" },
                { "{\"architecture\": \"amd64\", \"os\": \"linux\", \"rootfs\": {\"type\": \"layers\", "
                  "\"diff_ids\": [1]}}",
                  -EBADMSG, "diff_ids" },
                { "{\"architecture\": \"amd64\", \"os\": \"linux\", \"config\": {\"Env\": \"PATH=/bin\"}, "
                  "\"rootfs\": {\"type\": \"layers\", \"diff_ids\": []}}",
                  -EBADMSG, "field 'Env' must be an array of strings" },
                { "{\"architecture\": \"amd64\", \"os\": \"linux\", \"config\": {\"Labels\": {\"a\": 1}}, "
                  "\"rootfs\": {\"type\": \"layers\", \"diff_ids\": []}}",
                  -EBADMSG, "label values must be strings" },
                { "[]", -EBADMSG, "must be a JSON object" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                _cleanup_(oci_image_config_freep) OciImageConfig *c = NULL;
                _cleanup_free_ char *error = NULL;

                g_test_message("bad config: %s", cases[i].doc);
                g_assert_cmpint(oci_image_config_parse(cases[i].doc, strlen(cases[i].doc), &c, &error), ==,
                                cases[i].error);
                g_assert_null(c);
                g_assert_nonnull(error);
                g_test_message("  → %s", error);
                g_assert_nonnull(strstr(error, cases[i].message));
        }

        /* Too many diff_ids. */
        GString *s = g_string_new("{\"architecture\": \"amd64\", \"os\": \"linux\", \"rootfs\": {\"type\": "
                                  "\"layers\", \"diff_ids\": [");
        for (unsigned i = 0; i <= LAYERS_MAX; i++)
                g_string_append_printf(s, "%s\"" D1 "\"", i ? "," : "");
        g_string_append(s, "]}}");

        _cleanup_(oci_image_config_freep) OciImageConfig *c = NULL;
        _cleanup_free_ char *error = NULL;
        g_assert_cmpint(oci_image_config_parse(s->str, s->len, &c, &error), ==, -E2BIG);
        g_string_free(s, true);
}

/* ---- chain ids ---- */

static void sha256_hex(const char *input, char out[72]) {
        unsigned char md[32];
        unsigned len = 0;

        g_assert_cmpint(EVP_Digest(input, strlen(input), md, &len, EVP_sha256(), NULL), ==, 1);
        g_assert_cmpuint(len, ==, 32);
        strcpy(out, "sha256:");
        for (unsigned i = 0; i < 32; i++)
                sprintf(out + 7 + i * 2, "%02x", md[i]);
}

static void test_chain_ids(void) {
        char *const diff_ids[] = { (char *) D1, (char *) D2, (char *) D3, NULL };
        char expected1[72], expected2[72];
        g_autofree char *in1 = NULL, *in2 = NULL;
        char **chain = NULL;

        /* ChainID(L0) = DiffID(L0); ChainID(L0|…|Ln) = SHA256(ChainID(L0|…|Ln-1) + " " + DiffID(Ln)). */
        in1 = g_strdup_printf("%s %s", D1, D2);
        sha256_hex(in1, expected1);
        in2 = g_strdup_printf("%s %s", expected1, D3);
        sha256_hex(in2, expected2);

        g_assert_cmpint(oci_chain_ids(diff_ids, 3, &chain), ==, 0);
        g_assert_cmpstr(chain[0], ==, D1);
        g_assert_cmpstr(chain[1], ==, expected1);
        g_assert_cmpstr(chain[2], ==, expected2);
        g_assert_null(chain[3]);
        strv_free_test(chain);

        /* Pinned value so a change in the formula (e.g. a missing space) cannot go unnoticed. */
        g_assert_cmpint(oci_chain_ids(diff_ids, 2, &chain), ==, 0);
        g_assert_cmpstr(chain[1], ==, expected1);
        g_test_message("chain[1] = %s", chain[1]);
        strv_free_test(chain);

        g_assert_cmpint(oci_chain_ids(diff_ids, 0, &chain), ==, 0);
        g_assert_null(chain[0]);
        strv_free_test(chain);

        char *const bad[] = { (char *) D1, (char *) "sha256:nope", NULL };
        g_assert_cmpint(oci_chain_ids(bad, 2, &chain), ==, -EINVAL);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/oci-types/media-types", test_media_types);
        g_test_add_func("/oci-types/platform/parse", test_platform_parse);
        g_test_add_func("/oci-types/platform/default", test_platform_default);
        g_test_add_func("/oci-types/platform/matches", test_platform_matches);
        g_test_add_func("/oci-types/index/parse", test_index_parse);
        g_test_add_func("/oci-types/index/bad", test_index_bad);
        g_test_add_func("/oci-types/index/limits", test_index_limits);
        g_test_add_func("/oci-types/index/select", test_index_select);
        g_test_add_func("/oci-types/manifest/parse", test_manifest_parse);
        g_test_add_func("/oci-types/manifest/bad", test_manifest_bad);
        g_test_add_func("/oci-types/manifest/limits", test_manifest_limits);
        g_test_add_func("/oci-types/config/parse", test_config_parse);
        g_test_add_func("/oci-types/config/bad", test_config_bad);
        g_test_add_func("/oci-types/chain-ids", test_chain_ids);

        return g_test_run();
}
