/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <string.h>

#include "event-record.h"
#include "macro.h"

static void test_round_trip(void) {
        BerthEvent *e = NULL, *back = NULL;
        uint8_t buf[1024];
        size_t len;

        g_assert_cmpint(berth_event_new(7, "container", "die", "abc", "web", 1001,
                                        (const char *const[]){ "exitCode", "3", "reason", "", NULL }, &e),
                        ==, 0);
        g_assert_cmpint(berth_event_encode(e, buf, sizeof(buf), &len), ==, 0);
        g_assert_cmpint(berth_event_decode(buf, len, &back), ==, 0);
        g_assert_cmpstr(back->type, ==, "container");
        g_assert_cmpstr(back->action, ==, "die");
        g_assert_cmpstr(back->id, ==, "abc");
        g_assert_cmpstr(back->name, ==, "web");
        g_assert_cmpuint(back->owner, ==, 1001);
        g_assert_cmpuint(g_strv_length(back->attrs), ==, 4);
        g_assert_cmpstr(back->attrs[1], ==, "3");
        g_assert_cmpstr(back->attrs[3], ==, "");
        g_assert_cmpint(berth_event_encode(e, buf, 10, &len), ==, -EMSGSIZE);
        berth_event_free(back);
        berth_event_free(e);
}

static void test_no_attrs(void) {
        BerthEvent *e = NULL, *back = NULL;
        uint8_t buf[256];
        size_t len;

        g_assert_cmpint(berth_event_new(1, "image", "pull", "sha256:00", "busybox:latest", 0, NULL, &e), ==,
                        0);
        g_assert_cmpint(berth_event_encode(e, buf, sizeof(buf), &len), ==, 0);
        g_assert_cmpint(berth_event_decode(buf, len, &back), ==, 0);
        g_assert_cmpuint(g_strv_length(back->attrs), ==, 0);
        berth_event_free(back);
        berth_event_free(e);
}

static void reject(const char *bytes, size_t len) {
        BerthEvent *e = NULL;

        g_assert_cmpint(berth_event_decode((const uint8_t *) bytes, len, &e), ==, -EBADMSG);
        g_assert_null(e);
}

#define REJECT(lit) reject(lit, sizeof(lit) - 1)

static void test_hostile(void) {
        char big[BERTH_EVENT_FIELD_MAX + 64];

        REJECT("");
        /* Not NUL-terminated. */
        REJECT("container\0die\0id\0name\0"
               "0");
        /* Too few fields, an odd attribute, an unknown type, a bad action, bad owners. */
        REJECT("container\0die\0id\0");
        REJECT("container\0die\0id\0n\0"
               "0\0k\0");
        REJECT("volume\0die\0id\0n\0"
               "0\0");
        REJECT("container\0Die\0id\0n\0"
               "0\0");
        REJECT("container\0die\0id\0n\0-1\0");
        REJECT("container\0die\0id\0n\0"
               "4294967296\0");
        REJECT("container\0die\0id\0n\0"
               "01\0");
        /* Not UTF-8. */
        REJECT("container\0die\0\xff\0n\0"
               "0\0");
        /* A field over the limit. */
        memset(big, 'a', sizeof(big));
        memcpy(big, "container\0die\0", 14);
        big[sizeof(big) - 1] = 0;
        reject(big, sizeof(big));
}

static void test_too_many_attrs(void) {
        GString *s = g_string_new(NULL);
        BerthEvent *e = NULL;

        g_string_append_len(s,
                            "container\0die\0id\0n\0"
                            "0\0",
                            22);
        for (unsigned i = 0; i <= BERTH_EVENT_ATTRS_MAX; i++)
                g_string_append_len(s, "k\0v\0", 4);
        g_assert_cmpint(berth_event_decode((const uint8_t *) s->str, s->len, &e), ==, -EBADMSG);
        g_string_free(s, TRUE);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/event-record/round-trip", test_round_trip);
        g_test_add_func("/event-record/no-attrs", test_no_attrs);
        g_test_add_func("/event-record/hostile", test_hostile);
        g_test_add_func("/event-record/too-many-attrs", test_too_many_attrs);
        return g_test_run();
}
