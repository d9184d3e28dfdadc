/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <glib.h>
#include <sys/stat.h>

#include "content-store.h"

static char *store_dir(void) {
        return g_dir_make_tmp("berth-cs-XXXXXX", NULL);
}

static void rm_rf(const char *dir) {
        g_autofree char *cmd = g_strdup_printf("chmod -R u+w '%s'; rm -rf '%s'", dir, dir);
        g_assert_cmpint(system(cmd), ==, 0);
}

static void digest_of(const char *s, char out[static DIGEST_STRING_MAX]) {
        g_assert_cmpint(digest_buffer(DIGEST_SHA256, s, strlen(s), out), ==, 0);
}

static void test_commit(void) {
        g_autofree char *dir = store_dir();
        g_autofree char *root = g_build_filename(dir, "content", NULL);
        char d[DIGEST_STRING_MAX], actual[DIGEST_STRING_MAX];
        ContentStore *s = NULL;
        Ingest *i = NULL;
        struct stat st;
        uint64_t size = 0;
        int fd = -1;
        char buf[32] = {};

        digest_of("hello world", d);
        g_assert_cmpint(content_store_open(root, &s), ==, 0);
        g_assert_cmpint(content_store_has_blob(s, d), ==, 0);
        g_assert_cmpint(ingest_open(s, d, 11, &i), ==, 0);
        g_assert_cmpint(ingest_write(i, "hello ", 6), ==, 0);
        /* Not visible before commit. */
        g_assert_cmpint(content_store_has_blob(s, d), ==, 0);
        g_assert_cmpint(ingest_write(i, "world!", 6), ==, -EFBIG); /* more than promised */
        g_assert_cmpint(ingest_write(i, "world", 5), ==, 0);
        g_assert_cmpint(ingest_commit(i, &fd, actual), ==, 0);
        ingest_free(i);
        g_assert_cmpstr(actual, ==, d);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(read(fd, buf, sizeof(buf)), ==, 11);
        g_assert_cmpstr(buf, ==, "hello world");
        g_assert_cmpint(fstat(fd, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 0777, ==, 0444);
        g_assert_cmpint(fcntl(fd, F_GETFL) & O_ACCMODE, ==, O_RDONLY);
        close(fd);
        g_assert_cmpint(content_store_has_blob(s, d), ==, 1);
        g_assert_cmpint(content_store_open_blob(s, d, NULL, &size), ==, 0);
        g_assert_cmpuint(size, ==, 11);

        /* Invalid digests never become paths. */
        g_assert_cmpint(content_store_has_blob(s, "sha256:../../etc/passwd"), ==, -EINVAL);
        g_assert_cmpint(ingest_open(s, "sha256:ABC", 1, &i), ==, -EINVAL);

        BlobInfo *list = NULL;
        size_t n = 0;
        g_assert_cmpint(content_store_list(s, &list, &n), ==, 0);
        g_assert_cmpuint(n, ==, 1);
        g_assert_cmpstr(list[0].digest, ==, d);
        g_assert_cmpuint(list[0].size, ==, 11);
        free(list);

        uint64_t freed = 0;
        g_assert_cmpint(content_store_remove_blob(s, d, &freed), ==, 0);
        g_assert_cmpuint(freed, ==, 11);
        g_assert_cmpint(content_store_remove_blob(s, d, &freed), ==, -ENOENT);
        content_store_free(s);
        rm_rf(dir);
}

static void test_mismatch(void) {
        g_autofree char *dir = store_dir();
        char d[DIGEST_STRING_MAX], actual[DIGEST_STRING_MAX];
        g_autofree char *ingest = NULL;
        ContentStore *s = NULL;
        Ingest *i = NULL;

        digest_of("expected", d);
        g_assert_cmpint(content_store_open(dir, &s), ==, 0);
        g_assert_cmpint(ingest_open(s, d, 8, &i), ==, 0);
        g_assert_cmpint(ingest_write(i, "EXPECTED", 8), ==, 0);
        g_assert_cmpint(ingest_commit(i, NULL, actual), ==, -EBADMSG);
        ingest_free(i);
        g_assert_cmpstr(actual, !=, d);
        g_assert_cmpint(content_store_has_blob(s, d), ==, 0);
        /* The ingest is gone too. */
        ingest = g_strdup_printf("%s/ingest/sha256-%s", dir, digest_hex(d));
        g_assert_false(g_file_test(ingest, G_FILE_TEST_EXISTS));

        /* Short data fails as well. */
        g_assert_cmpint(ingest_open(s, d, 8, &i), ==, 0);
        g_assert_cmpint(ingest_write(i, "expect", 6), ==, 0);
        g_assert_cmpint(ingest_commit(i, NULL, NULL), ==, -EPIPE);
        ingest_free(i);
        g_assert_cmpint(content_store_has_blob(s, d), ==, 0);

        /* write_buffer verifies too. */
        g_assert_cmpint(content_store_write_buffer(s, d, "nope", 4, NULL), <, 0);
        g_assert_cmpint(content_store_write_buffer(s, d, "expected", 8, NULL), ==, 0);
        g_assert_cmpint(content_store_has_blob(s, d), ==, 1);
        content_store_free(s);
        rm_rf(dir);
}

static void test_resume(void) {
        g_autofree char *dir = store_dir();
        char d[DIGEST_STRING_MAX];
        ContentStore *s = NULL;
        Ingest *i = NULL;
        uint64_t freed = 0;

        digest_of("0123456789", d);
        g_assert_cmpint(content_store_open(dir, &s), ==, 0);
        g_assert_cmpint(ingest_open(s, d, 10, &i), ==, 0);
        g_assert_cmpint(ingest_write(i, "01234", 5), ==, 0);
        ingest_free(i); /* "killed" */

        /* Same digest and total: resumed from byte 5, the hash state rebuilt. */
        g_assert_cmpint(ingest_open(s, d, 10, &i), ==, 0);
        g_assert_cmpuint(ingest_offset(i), ==, 5);
        g_assert_cmpint(ingest_write(i, "56789", 5), ==, 0);
        g_assert_cmpint(ingest_commit(i, NULL, NULL), ==, 0);
        ingest_free(i);
        g_assert_cmpint(content_store_has_blob(s, d), ==, 1);
        g_assert_cmpint(content_store_remove_blob(s, d, NULL), ==, 0);

        /* A different total invalidates the partial data. */
        g_assert_cmpint(ingest_open(s, d, 10, &i), ==, 0);
        g_assert_cmpint(ingest_write(i, "012", 3), ==, 0);
        ingest_free(i);
        g_assert_cmpint(ingest_open(s, d, 11, &i), ==, 0);
        g_assert_cmpuint(ingest_offset(i), ==, 0);
        ingest_free(i);

        /* Reset (server ignored Range) starts from zero. */
        g_assert_cmpint(ingest_open(s, d, 10, &i), ==, 0);
        g_assert_cmpint(ingest_write(i, "xyz", 3), ==, 0);
        g_assert_cmpint(ingest_reset(i), ==, 0);
        g_assert_cmpuint(ingest_offset(i), ==, 0);
        g_assert_cmpint(ingest_write(i, "0123456789", 10), ==, 0);
        g_assert_cmpint(ingest_commit(i, NULL, NULL), ==, 0);
        ingest_free(i);

        /* Clean ingests: an in-use one is kept, others go. */
        char d2[DIGEST_STRING_MAX];
        digest_of("other", d2);
        g_assert_cmpint(ingest_open(s, d2, 5, &i), ==, 0);
        g_assert_cmpint(ingest_write(i, "ot", 2), ==, 0);
        ingest_free(i);
        g_assert_cmpint(content_store_clean_ingests(s, 3600ULL * 1000000ULL, NULL, NULL, &freed), ==, 0);
        g_assert_cmpuint(freed, ==, 0); /* too young */
        g_assert_cmpint(content_store_clean_ingests(s, 0, NULL, NULL, &freed), ==, 0);
        g_assert_cmpuint(freed, >, 2);
        g_assert_cmpint(ingest_open(s, d2, 5, &i), ==, 0);
        g_assert_cmpuint(ingest_offset(i), ==, 0);
        ingest_free(i);
        content_store_free(s);
        rm_rf(dir);
}

/* Issue 12 finding 2: a Resolve (content_store_write_buffer) of a digest whose FetchBlob is in flight
 * must not share that download's ingest: the download's later bytes (from a hostile registry) must never
 * land in the committed blob. One writer per ingest; a blob that no longer hashes to its name is not
 * served as present. */
static void test_hardening_f2_shared_ingest(void) {
        g_autofree char *dir = store_dir();
        g_autofree char *root = g_build_filename(dir, "content", NULL);
        g_autofree char *blob = NULL;
        const char *doc = "{\"schemaVersion\": 2, \"the\": \"real manifest\"}";
        size_t n = strlen(doc), half = n / 2;
        g_autofree char *garbage = g_strnfill(n - half, 'X');
        char d[DIGEST_STRING_MAX], actual[DIGEST_STRING_MAX];
        g_autofree char *bytes = NULL;
        ContentStore *s = NULL;
        Ingest *fetch = NULL, *second = NULL;
        uint64_t size = 0;
        gsize len = 0;
        int fd = -1;

        digest_of(doc, d);
        blob = g_build_filename(root, "blobs", "sha256", d + strlen("sha256:"), NULL);
        g_assert_cmpint(content_store_open(root, &s), ==, 0);

        /* The FetchBlob: half the bytes arrived. */
        g_assert_cmpint(ingest_open(s, d, n, &fetch), ==, 0);
        g_assert_cmpint(ingest_write(fetch, doc, half), ==, 0);
        /* One writer per ingest. */
        g_assert_cmpint(ingest_open(s, d, n, &second), ==, -EBUSY);

        /* The Resolve of another user's pull stores the same document from memory. */
        g_assert_cmpint(content_store_write_buffer(s, d, doc, n, &fd), ==, 0);
        g_assert_cmpint(fd, >=, 0);
        close(fd);

        /* The hostile registry now sends garbage for the rest of the download: it fails, and the
         * committed blob keeps its verified bytes. */
        g_assert_cmpint(ingest_write(fetch, garbage, n - half), ==, 0);
        g_assert_cmpint(ingest_commit(fetch, NULL, actual), ==, -EBADMSG);
        fetch = ingest_free(fetch);
        g_assert_true(g_file_get_contents(blob, &bytes, &len, NULL));
        g_assert_cmpuint(len, ==, n);
        g_assert_cmpmem(bytes, len, doc, n);
        g_assert_cmpint(content_store_open_blob_verified(s, d, NULL, &size), ==, 0);
        g_assert_cmpuint(size, ==, n);

        /* Once the download's ingest is closed, it may be opened again. */
        g_assert_cmpint(ingest_open(s, d, n, &second), ==, 0);
        second = ingest_free(second);

        /* A blob damaged behind the store's back (as the shared ingest used to do): the verified open
         * removes it and says "absent", so the next FetchBlob downloads it again. */
        content_store_free(s);
        g_assert_cmpint(content_store_open(root, &s), ==, 0);
        g_assert_cmpint(chmod(blob, 0644), ==, 0);
        g_assert_true(g_file_set_contents(blob, garbage, -1, NULL));
        g_assert_cmpint(content_store_open_blob_verified(s, d, NULL, NULL), ==, -ENOENT);
        g_assert_cmpint(content_store_has_blob(s, d), ==, 0);
        content_store_free(s);
        rm_rf(dir);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/content-store/commit", test_commit);
        g_test_add_func("/content-store/mismatch", test_mismatch);
        g_test_add_func("/content-store/resume", test_resume);
        g_test_add_func("/content-store/hardening-f2-shared-ingest", test_hardening_f2_shared_ingest);
        return g_test_run();
}
