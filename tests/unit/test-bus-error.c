/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <glib.h>
#include <string.h>

#include "bus-error.h"
#include "bus-names.h"
#include "bus-util.h"

static void test_is_gone(void) {
        static const char *const gone[] = {
                SD_BUS_ERROR_NO_REPLY,
                SD_BUS_ERROR_SERVICE_UNKNOWN,
                SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                SD_BUS_ERROR_DISCONNECTED,
                "org.freedesktop.DBus.Error.TimedOut",
                "org.freedesktop.DBus.Error.Spawn.ChildExited",
                "org.freedesktop.DBus.Error.Spawn.ExecFailed",
        };
        static const char *const not_gone[] = {
                SD_BUS_ERROR_ACCESS_DENIED,      SD_BUS_ERROR_INVALID_ARGS, SD_BUS_ERROR_UNKNOWN_METHOD,
                BERTH_ERROR_SERVICE_UNAVAILABLE, BERTH_ERROR_NOT_FOUND,
        };

        for (size_t i = 0; i < ELEMENTSOF(gone); i++) {
                const sd_bus_error e = SD_BUS_ERROR_MAKE_CONST(gone[i], "x");

                g_assert_true(bus_error_is_gone(&e));
                g_assert_false(bus_error_is_berth(&e));
        }
        for (size_t i = 0; i < ELEMENTSOF(not_gone); i++) {
                const sd_bus_error e = SD_BUS_ERROR_MAKE_CONST(not_gone[i], "x");

                g_assert_false(bus_error_is_gone(&e));
        }
        g_assert_false(bus_error_is_gone(NULL));
        g_assert_false(bus_error_is_berth(NULL));
}

static void test_set_internal(void) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        const sd_bus_error ours = SD_BUS_ERROR_MAKE_CONST(BERTH_ERROR_NOT_FOUND, "No image 'x'.");
        const sd_bus_error theirs =
                SD_BUS_ERROR_MAKE_CONST(SD_BUS_ERROR_SERVICE_UNKNOWN, "Not activatable.");

        /* Ours travel unchanged: the service wrote the message for the user. */
        g_assert_cmpint(bus_error_set_internal(&error, &ours, "Listing"), <, 0);
        g_assert_cmpstr(error.name, ==, BERTH_ERROR_NOT_FOUND);
        g_assert_cmpstr(error.message, ==, "No image 'x'.");
        sd_bus_error_free(&error);

        g_assert_cmpint(bus_error_set_internal(&error, &theirs, "Listing"), <, 0);
        g_assert_cmpstr(error.name, ==, BERTH_ERROR_SERVICE_UNAVAILABLE);
        g_assert_cmpstr(error.message, ==, "Listing failed: Not activatable.");
        sd_bus_error_free(&error);

        g_assert_cmpint(bus_error_set_internal(&error, NULL, "Listing"), <, 0);
        g_assert_cmpstr(error.name, ==, BERTH_ERROR_SERVICE_UNAVAILABLE);
        g_assert_cmpstr(error.message, ==, "Listing failed: no reply");
}

static void test_errno_unmapped(void) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        const sd_bus_error set = SD_BUS_ERROR_MAKE_CONST(BERTH_ERROR_IO, "Disk on fire.");

        /* Not ours: left for sd-bus to name. */
        g_assert_cmpint(bus_error_from_errno(&error, -EACCES), ==, -EACCES);
        g_assert_false(sd_bus_error_is_set(&error));
        g_assert_cmpint(bus_error_from_errno(&error, 0), ==, 0);
        g_assert_false(sd_bus_error_is_set(&error));
        /* A name already set wins. */
        g_assert_cmpint(sd_bus_error_copy(&error, &set), <, 0);
        g_assert_cmpint(bus_error_from_errno(&error, -ENOENT), ==, -ENOENT);
        g_assert_cmpstr(error.name, ==, BERTH_ERROR_IO);
}

static void test_errno_map(void) {
        static const struct {
                int errnum;
                const char *name;
        } table[] = {
                { ENOENT, BERTH_ERROR_NOT_FOUND },
                { EEXIST, BERTH_ERROR_EXISTS },
                { EBUSY, BERTH_ERROR_BUSY },
                { ECANCELED, BERTH_ERROR_CANCELLED },
                { E2BIG, BERTH_ERROR_LIMIT },
                { EBADMSG, BERTH_ERROR_BAD_CONTENT },
                { EOPNOTSUPP, BERTH_ERROR_UNSUPPORTED },
        };

        g_assert_cmpint(bus_error_map_register(), >=, 0);
        /* Registering twice is harmless. */
        g_assert_cmpint(bus_error_map_register(), >=, 0);
        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;

                g_assert_cmpint(bus_error_from_errno(&error, -table[i].errnum), ==, -table[i].errnum);
                g_assert_cmpstr(error.name, ==, table[i].name);
                g_assert_cmpstr(error.message, ==, strerror(table[i].errnum));
                /* And back: a caller reading our reply gets the errno. */
                g_assert_cmpint(sd_bus_error_get_errno(&error), ==, table[i].errnum);
        }
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/bus-error/is-gone", test_is_gone);
        g_test_add_func("/bus-error/set-internal", test_set_internal);
        g_test_add_func("/bus-error/errno-map", test_errno_map);
        g_test_add_func("/bus-error/errno-unmapped", test_errno_unmapped);
        return g_test_run();
}
