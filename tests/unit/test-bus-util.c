/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <glib.h>
#include <sys/socket.h>

#include "bus-util.h"

static void test_check_flags(void) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;

        g_assert_cmpint(bus_check_flags(0, 0, &error), ==, 0);
        g_assert_false(sd_bus_error_is_set(&error));
        g_assert_cmpint(bus_check_flags(3, 3, &error), ==, 0);
        g_assert_cmpint(bus_check_flags(1, 3, &error), ==, 0);
        g_assert_false(sd_bus_error_is_set(&error));

        /* Unknown bits are refused, and the message names only those. */
        g_assert_cmpint(bus_check_flags(4, 0, &error), ==, -EINVAL);
        g_assert_cmpstr(error.name, ==, SD_BUS_ERROR_INVALID_ARGS);
        g_assert_cmpstr(error.message, ==, "Unknown flags 0x4.");
        sd_bus_error_free(&error);

        g_assert_cmpint(bus_check_flags(0x13, 0x3, &error), ==, -EINVAL);
        g_assert_cmpstr(error.message, ==, "Unknown flags 0x10.");
        sd_bus_error_free(&error);

        g_assert_cmpint(bus_check_flags(UINT64_C(1) << 63, 0x1, &error), ==, -EINVAL);
        g_assert_cmpstr(error.message, ==, "Unknown flags 0x8000000000000000.");
}

static int new_call(sd_bus *bus, sd_bus_message **ret, const char *member, const char *types, ...) {
        va_list ap;
        int r;

        va_start(ap, types);
        r = bus_message_new_method_callv(bus, ret, "org.example.Peer", "/org/example/Peer",
                                         "org.example.Peer", member, types, ap);
        va_end(ap);
        return r;
}

static void test_new_method_callv(void) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *empty = NULL;
        const char *s = NULL;
        uint64_t t = 0;
        int pair[2];

        /* A bus over a socketpair: started (so messages can be built), never connected to a daemon. */
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), ==, 0);
        g_assert_cmpint(sd_bus_new(&bus), >=, 0);
        g_assert_cmpint(sd_bus_set_fd(bus, pair[0], pair[0]), >=, 0);
        g_assert_cmpint(sd_bus_start(bus), >=, 0);

        g_assert_cmpint(new_call(bus, &m, "Frob", "st", "hello", UINT64_C(42)), ==, 0);
        g_assert_cmpstr(sd_bus_message_get_destination(m), ==, "org.example.Peer");
        g_assert_cmpstr(sd_bus_message_get_path(m), ==, "/org/example/Peer");
        g_assert_cmpstr(sd_bus_message_get_interface(m), ==, "org.example.Peer");
        g_assert_cmpstr(sd_bus_message_get_member(m), ==, "Frob");
        g_assert_cmpint(sd_bus_message_seal(m, 1, 0), >=, 0);
        g_assert_cmpstr(sd_bus_message_get_signature(m, true), ==, "st");
        g_assert_cmpint(sd_bus_message_read(m, "st", &s, &t), >, 0);
        g_assert_cmpstr(s, ==, "hello");
        g_assert_cmpuint(t, ==, 42);

        /* No types: no arguments. */
        g_assert_cmpint(new_call(bus, &empty, "Ping", NULL), ==, 0);
        g_assert_cmpint(sd_bus_message_seal(empty, 2, 0), >=, 0);
        g_assert_cmpstr(sd_bus_message_get_signature(empty, true), ==, "");

        close(pair[1]);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/bus-util/check-flags", test_check_flags);
        g_test_add_func("/bus-util/new-method-callv", test_new_method_callv);

        return g_test_run();
}
