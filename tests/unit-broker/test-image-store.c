/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The broker's image metadata: what is put comes back the same, from memory and after a reopen (a
 * broker restart); a removal stays removed; broken or half-written documents are never loaded. */

#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <sys/stat.h>

#include "image-store.h"
#include "json-util.h"

static char *fake_digest(char c) {
        char *d = g_malloc(7 + 64 + 1);

        memcpy(d, "sha256:", 7);
        memset(d + 7, c, 64);
        d[7 + 64] = 0;
        return d;
}

static void fill_platform(ImagePlatform *p, const char *platform, char base, size_t n_layers,
                          bool unpacked) {
        p->platform = g_strdup(platform);
        p->manifest_digest = fake_digest(base);
        p->manifest_media_type = g_strdup("application/vnd.oci.image.manifest.v1+json");
        p->manifest_size = 1000 + (uint64_t) base;
        p->config_digest = fake_digest((char) (base + 1));
        p->config_media_type = g_strdup("application/vnd.oci.image.config.v1+json");
        p->config_size = 500;
        p->layers = g_new0(ImageLayer, n_layers);
        p->chain_ids = g_new0(char *, n_layers + 1);
        for (size_t l = 0; l < n_layers; l++) {
                p->layers[l] = (ImageLayer){
                        .digest = fake_digest((char) ('a' + l)),
                        .media_type = g_strdup("application/vnd.oci.image.layer.v1.tar+gzip"),
                        .size = 4096 * (l + 1),
                        .diff_id = fake_digest((char) ('0' + l)),
                };
                p->chain_ids[l] = fake_digest((char) ('4' + l));
        }
        p->n_layers = n_layers;
        p->unpacked = unpacked;
        p->config = json_from_string("{\"env\":[\"PATH=/bin\"],\"cmd\":[\"sh\"],\"user\":null}", NULL);
        g_assert_nonnull(p->config);
}

static Image *new_image(const char *name, size_t n_platforms) {
        Image *i = g_new0(Image, 1);

        i->name = g_strdup(name);
        i->target_digest = fake_digest('f');
        i->target_media_type = g_strdup("application/vnd.oci.image.index.v1+json");
        i->target_size = 321;
        i->pulled_at_usec = UINT64_C(1700000000000000);
        i->platforms = g_new0(ImagePlatform, n_platforms);
        for (size_t k = 0; k < n_platforms; k++)
                fill_platform(&i->platforms[k], k == 0 ? "linux/amd64" : "linux/arm64/v8",
                              (char) ('b' + 2 * k), k + 2, k == 0);
        i->n_platforms = n_platforms;
        return i;
}

/* Two records are the same when their JSON documents are. */
static char *image_text(const Image *i) {
        _cleanup_json_node_ JsonNode *n = image_to_json(i);

        g_assert_nonnull(n);
        return json_to_string_compact(n);
}

static void assert_same(const Image *a, const Image *b) {
        g_autofree char *ta = image_text(a), *tb = image_text(b);

        g_assert_cmpstr(ta, ==, tb);
        g_assert_cmpstr(a->name, ==, b->name);
        g_assert_cmpuint(a->n_platforms, ==, b->n_platforms);
        for (size_t k = 0; k < a->n_platforms; k++) {
                g_assert_cmpstr(a->platforms[k].platform, ==, b->platforms[k].platform);
                g_assert_cmpuint(a->platforms[k].n_layers, ==, b->platforms[k].n_layers);
                g_assert_true(a->platforms[k].unpacked == b->platforms[k].unpacked);
                g_assert_true(g_strv_equal((const char *const *) a->platforms[k].chain_ids,
                                           (const char *const *) b->platforms[k].chain_ids));
        }
}

static char *make_state_dir(void) {
        g_autoptr(GError) e = NULL;
        char *d = g_dir_make_tmp("berth-image-store-XXXXXX", &e);

        g_assert_no_error(e);
        return d;
}

static void remove_tree(const char *path) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", path);

        g_assert_cmpint(system(cmd), ==, 0);
}

static void test_round_trip(void) {
        g_autofree char *dir = make_state_dir();
        _cleanup_(image_freep) Image *expect_a = new_image("docker.io/library/busybox:latest", 2);
        _cleanup_(image_freep) Image *expect_b = new_image("localhost:5000/team/app:v1", 1);
        ImageStore *s = NULL;
        Image *a, *b, **l = NULL;
        size_t n = 0;

        g_assert_cmpint(image_store_open(dir, &s), ==, 0);
        g_assert_cmpuint(image_store_count(s), ==, 0);

        {
                Image *put_a = new_image("docker.io/library/busybox:latest", 2);
                Image *put_b = new_image("localhost:5000/team/app:v1", 1);

                g_assert_cmpint(image_store_put(s, &put_a), ==, 0);
                g_assert_cmpint(image_store_put(s, &put_b), ==, 0);
                /* The store took both over. */
                g_assert_null(put_a);
                g_assert_null(put_b);
        }
        a = image_store_get(s, "docker.io/library/busybox:latest");
        g_assert_nonnull(a);
        assert_same(a, expect_a);

        /* A restart: everything comes back from disk the same. */
        image_store_free(s);
        g_assert_cmpint(image_store_open(dir, &s), ==, 0);
        g_assert_cmpuint(image_store_count(s), ==, 2);
        a = image_store_get(s, "docker.io/library/busybox:latest");
        b = image_store_get(s, "localhost:5000/team/app:v1");
        g_assert_nonnull(a);
        g_assert_nonnull(b);
        assert_same(a, expect_a);
        assert_same(b, expect_b);
        g_assert_cmpint(image_store_list(s, &l, &n), ==, 0);
        g_assert_cmpuint(n, ==, 2);
        free(l);

        /* Replacing a record replaces it on disk too. */
        {
                Image *change = new_image("docker.io/library/busybox:latest", 1);

                g_assert_cmpint(image_store_put(s, &change), ==, 0);
        }
        image_store_free(s);
        g_assert_cmpint(image_store_open(dir, &s), ==, 0);
        a = image_store_get(s, "docker.io/library/busybox:latest");
        g_assert_nonnull(a);
        g_assert_cmpuint(a->n_platforms, ==, 1);

        /* A removal survives the restart. */
        g_assert_cmpint(image_store_remove(s, "docker.io/library/busybox:latest"), ==, 0);
        g_assert_null(image_store_get(s, "docker.io/library/busybox:latest"));
        image_store_free(s);
        g_assert_cmpint(image_store_open(dir, &s), ==, 0);
        g_assert_null(image_store_get(s, "docker.io/library/busybox:latest"));
        g_assert_nonnull(image_store_get(s, "localhost:5000/team/app:v1"));
        g_assert_cmpuint(image_store_count(s), ==, 1);
        image_store_free(s);
        remove_tree(dir);
}

/* The directory the documents live in: the only regular files there are ours. */
static char *images_dir(const char *state_dir) {
        g_autofree char *meta = g_build_filename(state_dir, "meta", NULL);
        g_autofree char *images = g_build_filename(meta, "images", NULL);

        g_assert_true(g_file_test(images, G_FILE_TEST_IS_DIR));
        return g_steal_pointer(&images);
}

static void test_damaged_documents(void) {
        g_autofree char *dir = make_state_dir();
        g_autofree char *images = NULL, *junk = NULL, *tmp = NULL, *wrong = NULL, *good = NULL,
                        *moved = NULL;
        g_autofree char *good_text = NULL;
        g_autoptr(GDir) d = NULL;
        const char *f;
        ImageStore *s = NULL;
        Image *i = new_image("docker.io/library/debian:12", 1);

        g_assert_cmpint(image_store_open(dir, &s), ==, 0);
        g_assert_cmpint(image_store_put(s, &i), ==, 0);
        image_store_free(s);

        images = images_dir(dir);
        /* A good document under another image's file name: its name does not hash to the file name. */
        d = g_dir_open(images, 0, NULL);
        g_assert_nonnull(d);
        while ((f = g_dir_read_name(d)))
                if (g_str_has_suffix(f, ".json"))
                        good = g_build_filename(images, f, NULL);
        g_assert_nonnull(good);
        g_assert_true(g_file_get_contents(good, &good_text, NULL, NULL));
        moved = g_strdup_printf("%s/%064d.json", images, 2);
        g_assert_true(g_file_set_contents(moved, good_text, -1, NULL));
        /* Not JSON at all, under a name that looks like a document. */
        junk = g_strdup_printf("%s/%064d.json", images, 0);
        g_assert_true(g_file_set_contents(junk, "{ not json", -1, NULL));
        /* Valid JSON but the schema of another version. */
        wrong = g_strdup_printf("%s/%064d.json", images, 1);
        g_assert_true(g_file_set_contents(wrong, "{\"schema_version\":999,\"name\":\"x\"}", -1, NULL));
        /* A temp file a kill left between write and rename. */
        tmp = g_strdup_printf("%s/.#leftover.1234.tmp", images);
        g_assert_true(g_file_set_contents(tmp, "{}", -1, NULL));

        g_assert_cmpint(image_store_open(dir, &s), ==, 0);
        /* Only the good record is loaded; the leftover is cleaned away. */
        g_assert_cmpuint(image_store_count(s), ==, 1);
        g_assert_nonnull(image_store_get(s, "docker.io/library/debian:12"));
        g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
        image_store_free(s);
        remove_tree(dir);
}

static void test_from_json_refuses(void) {
        static const char *const bad[] = {
                /* not an object */
                "[]",
                /* name not normalised */
                "{\"schema_version\":1,\"name\":\"busybox\",\"target\":{\"digest\":\"sha256:"
                "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\",\"media_type\":\"x\","
                "\"size\":1},\"platforms\":[]}",
                /* no platforms */
                "{\"schema_version\":1,\"name\":\"docker.io/library/busybox:latest\",\"target\":{\"digest\":"
                "\"sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\",\"media_type\":"
                "\"x\","
                "\"size\":1},\"platforms\":[]}",
        };
        _cleanup_(image_freep) Image *good = new_image("docker.io/library/busybox:latest", 1);
        _cleanup_json_node_ JsonNode *n = image_to_json(good);
        _cleanup_(image_freep) Image *back = NULL;
        g_autofree char *text = json_to_string_compact(n);
        char *msg = NULL;

        g_assert_cmpint(image_from_json(n, &back, &msg), ==, 0);
        assert_same(back, good);

        for (size_t k = 0; k < G_N_ELEMENTS(bad); k++) {
                _cleanup_json_node_ JsonNode *b = json_from_string(bad[k], NULL);
                Image *i = NULL;

                g_assert_nonnull(b);
                g_assert_cmpint(image_from_json(b, &i, &msg), <, 0);
                g_assert_null(i);
                g_free(msg);
                msg = NULL;
        }

        /* chain_ids that disagree with the layers. */
        {
                g_autofree char *broken = g_strdup(text);
                char *p = strstr(broken, "\"chain_ids\":[\"sha256:");
                _cleanup_json_node_ JsonNode *b = NULL;
                Image *i = NULL;

                g_assert_nonnull(p);
                /* drop the first chain id: n_layers entries no more */
                memmove(p + strlen("\"chain_ids\":["), p + strlen("\"chain_ids\":[") + 7 + 64 + 3,
                        strlen(p + strlen("\"chain_ids\":[") + 7 + 64 + 3) + 1);
                b = json_from_string(broken, NULL);
                g_assert_nonnull(b);
                g_assert_cmpint(image_from_json(b, &i, &msg), <, 0);
                g_assert_null(i);
                g_free(msg);
        }
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/image-store/round-trip", test_round_trip);
        g_test_add_func("/image-store/damaged-documents", test_damaged_documents);
        g_test_add_func("/image-store/from-json-refuses", test_from_json_refuses);
        return g_test_run();
}
