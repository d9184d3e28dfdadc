/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <string.h>

#include "berth-error.h"

static void test_set(void) {
        BerthError e = {};

        g_assert_cmpint(berth_error_set(&e, ENOENT, "no '%s'", "x"), ==, -ENOENT);
        g_assert_cmpint(e.error, ==, ENOENT);
        g_assert_cmpstr(e.message, ==, "no 'x'");
        /* negative errnos are normalised, 0 never means success */
        g_assert_cmpint(berth_error_set(&e, -EPERM, "p"), ==, -EPERM);
        g_assert_cmpint(e.error, ==, EPERM);
        g_assert_cmpint(berth_error_set(&e, 0, "zero"), ==, -EIO);
        g_assert_cmpint(e.error, ==, EIO);
        g_assert_cmpint(berth_error_set(NULL, EINVAL, "nowhere"), ==, -EINVAL);
}

static void test_setm_and_prefix(void) {
        BerthError e = {};

        g_assert_cmpint(berth_error_setm(&e, EACCES, "open '%s'", "/f"), ==, -EACCES);
        g_assert_cmpstr(e.message, ==, "open '/f': Permission denied");
        g_assert_cmpint(berth_error_prefix(&e, "step %d", 3), ==, -EACCES);
        g_assert_cmpstr(e.message, ==, "step 3: open '/f': Permission denied");
}

static void test_truncation(void) {
        BerthError e = {};
        char big[2 * BERTH_ERROR_MESSAGE_MAX];

        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        berth_error_set(&e, E2BIG, "%s", big);
        g_assert_cmpuint(strlen(e.message), ==, BERTH_ERROR_MESSAGE_MAX - 1);
        berth_error_prefix(&e, "%s", big);
        g_assert_cmpuint(strlen(e.message), ==, BERTH_ERROR_MESSAGE_MAX - 1);
        berth_error_setm(&e, E2BIG, "%s", big);
        g_assert_cmpuint(strlen(e.message), ==, BERTH_ERROR_MESSAGE_MAX - 1);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/berth-error/set", test_set);
        g_test_add_func("/berth-error/setm-prefix", test_setm_and_prefix);
        g_test_add_func("/berth-error/truncation", test_truncation);
        return g_test_run();
}
