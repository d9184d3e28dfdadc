/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "event-ring.h"
#include "macro.h"

#define SLOTS 8U
#define SLOT_SIZE 256U

static int tmpdir(char **ret_path) {
        char *path = g_dir_make_tmp("event-ring-XXXXXX", NULL);

        g_assert_nonnull(path);
        *ret_path = path;
        return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void cleanup_dir(int fd, char *path) {
        (void) unlinkat(fd, "ring", 0);
        close(fd);
        g_rmdir(path);
        g_free(path);
}

static void append_n(EventRing *r, unsigned from, unsigned n) {
        for (unsigned i = from; i < from + n; i++) {
                char buf[32];
                uint64_t seq;

                snprintf(buf, sizeof(buf), "event %u", i);
                g_assert_cmpint(event_ring_append(r, 1000 + i, i, buf, strlen(buf) + 1, &seq), ==, 0);
                g_assert_cmpuint(seq, ==, i);
        }
}

static void test_persists_in_order(void) {
        char *path;
        int dfd = tmpdir(&path);
        EventRing *r = NULL;
        char id[EVENT_RING_ID_STRING_LEN + 1];

        g_assert_cmpint(event_ring_open(dfd, "ring", SLOTS, SLOT_SIZE, &r), ==, 0);
        g_assert_true(event_ring_id_valid(event_ring_id(r)));
        g_assert_cmpuint(event_ring_last_seq(r), ==, 0);
        g_assert_cmpuint(event_ring_first_seq(r), ==, 0);
        append_n(r, 1, 5);
        strcpy(id, event_ring_id(r));
        g_assert_cmpint(event_ring_set_mark(r, id, 42), ==, 0);
        r = event_ring_free(r);

        g_assert_cmpint(event_ring_open(dfd, "ring", SLOTS, SLOT_SIZE, &r), ==, 0);
        g_assert_cmpstr(event_ring_id(r), ==, id);
        g_assert_cmpstr(event_ring_mark_id(r), ==, id);
        g_assert_cmpuint(event_ring_mark_value(r), ==, 42);
        g_assert_cmpuint(event_ring_first_seq(r), ==, 1);
        g_assert_cmpuint(event_ring_last_seq(r), ==, 5);
        for (uint64_t s = 1; s <= 5; s++) {
                const EventRingRecord *rec = event_ring_get(r, s);
                char want[32];

                g_assert_nonnull(rec);
                snprintf(want, sizeof(want), "event %u", (unsigned) s);
                g_assert_cmpstr((const char *) rec->payload, ==, want);
                g_assert_cmpuint(rec->time_usec, ==, 1000 + s);
                g_assert_cmpuint(rec->aux, ==, s);
        }
        /* Counting goes on after a reopen. */
        append_n(r, 6, 1);
        r = event_ring_free(r);
        cleanup_dir(dfd, path);
}

static void test_bounded(void) {
        char *path;
        int dfd = tmpdir(&path);
        EventRing *r = NULL;
        struct stat st, st2;

        g_assert_cmpint(event_ring_open(dfd, "ring", SLOTS, SLOT_SIZE, &r), ==, 0);
        g_assert_cmpint(fstatat(dfd, "ring", &st, 0), ==, 0);
        append_n(r, 1, 5 * SLOTS + 3);
        g_assert_cmpint(fstatat(dfd, "ring", &st2, 0), ==, 0);
        /* The file never grows; the newest SLOTS records are kept, in order. */
        g_assert_cmpint(st.st_size, ==, st2.st_size);
        g_assert_cmpint(st2.st_size, ==, (SLOTS + 1) * SLOT_SIZE);
        r = event_ring_free(r);
        g_assert_cmpint(event_ring_open(dfd, "ring", SLOTS, SLOT_SIZE, &r), ==, 0);
        g_assert_cmpuint(event_ring_last_seq(r), ==, 5 * SLOTS + 3);
        g_assert_cmpuint(event_ring_first_seq(r), ==, 4 * SLOTS + 4);
        g_assert_null(event_ring_get(r, 4 * SLOTS + 3));
        g_assert_cmpint(event_ring_append(r, 0, 0, NULL, SLOT_SIZE - EVENT_RING_SLOT_HEADER + 1, NULL), ==,
                        -EMSGSIZE);
        r = event_ring_free(r);
        cleanup_dir(dfd, path);
}

static void test_hostile_file(void) {
        char *path;
        int dfd = tmpdir(&path), fd;
        EventRing *r = NULL;
        char id[EVENT_RING_ID_STRING_LEN + 1];
        uint8_t junk[SLOT_SIZE];

        g_assert_cmpint(event_ring_open(dfd, "ring", SLOTS, SLOT_SIZE, &r), ==, 0);
        append_n(r, 1, 4);
        strcpy(id, event_ring_id(r));
        r = event_ring_free(r);

        /* A flipped byte in record 2's payload, and record 3 copied into record 4's slot. */
        fd = openat(dfd, "ring", O_RDWR | O_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(pread(fd, junk, 1, 3 * SLOT_SIZE + EVENT_RING_SLOT_HEADER), ==, 1);
        junk[0] ^= 1;
        g_assert_cmpint(pwrite(fd, junk, 1, 3 * SLOT_SIZE + EVENT_RING_SLOT_HEADER), ==, 1);
        g_assert_cmpint(pread(fd, junk, sizeof(junk), 4 * SLOT_SIZE), ==, sizeof(junk));
        g_assert_cmpint(pwrite(fd, junk, sizeof(junk), 5 * SLOT_SIZE), ==, sizeof(junk));
        close(fd);
        g_assert_cmpint(event_ring_open(dfd, "ring", SLOTS, SLOT_SIZE, &r), ==, 0);
        g_assert_cmpstr(event_ring_id(r), ==, id);
        g_assert_nonnull(event_ring_get(r, 1));
        g_assert_null(event_ring_get(r, 2));
        g_assert_nonnull(event_ring_get(r, 3));
        g_assert_null(event_ring_get(r, 4));
        g_assert_cmpuint(event_ring_last_seq(r), ==, 3);
        r = event_ring_free(r);

        /* A damaged header: a new ring, with a new id. */
        fd = openat(dfd, "ring", O_RDWR | O_CLOEXEC);
        g_assert_cmpint(pwrite(fd, "X", 1, 0), ==, 1);
        close(fd);
        g_assert_cmpint(event_ring_open(dfd, "ring", SLOTS, SLOT_SIZE, &r), ==, 0);
        g_assert_cmpstr(event_ring_id(r), !=, id);
        g_assert_cmpuint(event_ring_last_seq(r), ==, 0);
        r = event_ring_free(r);

        /* Another shape (slot count): a new ring too. */
        g_assert_cmpint(event_ring_open(dfd, "ring", SLOTS * 2, SLOT_SIZE, &r), ==, 0);
        g_assert_cmpuint(event_ring_last_seq(r), ==, 0);
        r = event_ring_free(r);

        /* Not a regular file. */
        g_assert_cmpint(unlinkat(dfd, "ring", 0), ==, 0);
        g_assert_cmpint(mkfifoat(dfd, "ring", 0600), ==, 0);
        g_assert_cmpint(event_ring_open(dfd, "ring", SLOTS, SLOT_SIZE, &r), <, 0);
        cleanup_dir(dfd, path);
}

static void test_mark(void) {
        char *path;
        int dfd = tmpdir(&path);
        EventRing *r = NULL;

        g_assert_cmpint(event_ring_open(dfd, "ring", SLOTS, SLOT_SIZE, &r), ==, 0);
        g_assert_cmpstr(event_ring_mark_id(r), ==, "");
        g_assert_cmpint(event_ring_set_mark(r, "not-hex", 1), ==, -EINVAL);
        g_assert_cmpint(event_ring_set_mark(r, "00112233445566778899aabbccddeeff", 7), ==, 0);
        r = event_ring_free(r);
        g_assert_cmpint(event_ring_open(dfd, "ring", SLOTS, SLOT_SIZE, &r), ==, 0);
        g_assert_cmpstr(event_ring_mark_id(r), ==, "00112233445566778899aabbccddeeff");
        g_assert_cmpuint(event_ring_mark_value(r), ==, 7);
        g_assert_cmpint(event_ring_set_mark(r, "", 0), ==, 0);
        r = event_ring_free(r);
        g_assert_cmpint(event_ring_open(dfd, "ring", SLOTS, SLOT_SIZE, &r), ==, 0);
        g_assert_cmpstr(event_ring_mark_id(r), ==, "");
        r = event_ring_free(r);
        cleanup_dir(dfd, path);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/event-ring/persists-in-order", test_persists_in_order);
        g_test_add_func("/event-ring/bounded", test_bounded);
        g_test_add_func("/event-ring/hostile-file", test_hostile_file);
        g_test_add_func("/event-ring/mark", test_mark);
        return g_test_run();
}
