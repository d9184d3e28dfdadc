/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>

#include "sender-uid-cache.h"

/* Two distinct addresses stand for two connections: the cache only compares the pointer. */
static char bus_a, bus_b;
#define BUS_A ((sd_bus *) &bus_a)
#define BUS_B ((sd_bus *) &bus_b)

static void test_unique_names_only(void) {
        uid_t uid = 4242;

        sender_uid_cache_put(BUS_A, ":1.7", 1000);
        g_assert_true(sender_uid_cache_get(BUS_A, ":1.7", &uid));
        g_assert_cmpuint(uid, ==, 1000);
        /* uid 0 is a value like any other, not "absent". */
        sender_uid_cache_put(BUS_A, ":1.8", 0);
        g_assert_true(sender_uid_cache_get(BUS_A, ":1.8", &uid));
        g_assert_cmpuint(uid, ==, 0);
        /* A well-known name can change owners: never remembered. */
        sender_uid_cache_put(BUS_A, "org.berth.Broker1", 0);
        g_assert_false(sender_uid_cache_get(BUS_A, "org.berth.Broker1", &uid));
        g_assert_false(sender_uid_cache_get(BUS_A, NULL, &uid));
        g_assert_false(sender_uid_cache_get(BUS_A, ":1.9", &uid));
}

static void test_other_connection_starts_afresh(void) {
        uid_t uid;

        sender_uid_cache_put(BUS_A, ":1.20", 1000);
        /* Unique names are per bus daemon: another connection must not see this one's answers. */
        g_assert_false(sender_uid_cache_get(BUS_B, ":1.20", &uid));
        sender_uid_cache_put(BUS_B, ":1.21", 1001);
        g_assert_false(sender_uid_cache_get(BUS_A, ":1.20", &uid));
        g_assert_true(sender_uid_cache_get(BUS_B, ":1.21", &uid));
        g_assert_cmpuint(uid, ==, 1001);
}

static void test_bounded(void) {
        uid_t uid;

        for (unsigned i = 0; i <= SENDER_UID_CACHE_MAX; i++) {
                g_autofree char *name = g_strdup_printf(":2.%u", i);
                sender_uid_cache_put(BUS_A, name, 1000 + i);
        }
        /* Full at the last put: everything before it was forgotten, the last one kept. */
        g_assert_false(sender_uid_cache_get(BUS_A, ":2.0", &uid));
        g_autofree char *last = g_strdup_printf(":2.%u", SENDER_UID_CACHE_MAX);
        g_assert_true(sender_uid_cache_get(BUS_A, last, &uid));
        g_assert_cmpuint(uid, ==, 1000 + SENDER_UID_CACHE_MAX);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/sender-uid-cache/unique-names-only", test_unique_names_only);
        g_test_add_func("/sender-uid-cache/other-connection", test_other_connection_starts_afresh);
        g_test_add_func("/sender-uid-cache/bounded", test_bounded);
        return g_test_run();
}
