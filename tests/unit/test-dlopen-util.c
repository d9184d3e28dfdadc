/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <glib.h>
#include <math.h>

#include "dlopen-util.h"

static typeof(cos) *sym_cos;
static typeof(floor) *sym_floor;
static typeof(cos) *sym_no_such_function;

static void test_loads_and_resolves(void) {
        void *handle = NULL, *first;
        const char *error = NULL;

        g_assert_cmpint(dlopen_symbols(&handle, "libm.so.6", &error, DLSYM_ARG(cos), DLSYM_ARG(floor), NULL),
                        ==, 0);
        g_assert_nonnull(handle);
        g_assert_true(sym_cos(0.0) == 1.0);
        g_assert_true(sym_floor(2.5) == 2.0);

        /* Once loaded, later calls are no-ops. */
        first = handle;
        g_assert_cmpint(dlopen_symbols(&handle, "libm.so.6", &error, DLSYM_ARG(cos), NULL), ==, 0);
        g_assert_true(handle == first);
}

static void test_missing_library(void) {
        void *handle = NULL;
        const char *error = NULL;

        g_assert_cmpint(
                dlopen_symbols(&handle, "libberth-does-not-exist.so.0", &error, DLSYM_ARG(cos), NULL), ==,
                -EOPNOTSUPP);
        g_assert_null(handle);
        g_assert_nonnull(error);
}

static void test_missing_symbol_keeps_nothing(void) {
        void *handle = NULL;
        const char *error = NULL;

        sym_cos = NULL;
        g_assert_cmpint(dlopen_symbols(&handle, "libm.so.6", &error, DLSYM_ARG(cos),
                                       DLSYM_ARG(no_such_function), NULL),
                        ==, -EOPNOTSUPP);
        g_assert_null(handle);
        g_assert_nonnull(error);
        /* Half-resolved tables would call into a library that is not kept: all reset. */
        g_assert_null(sym_cos);
        g_assert_null(sym_no_such_function);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/dlopen-util/loads-and-resolves", test_loads_and_resolves);
        g_test_add_func("/dlopen-util/missing-library", test_missing_library);
        g_test_add_func("/dlopen-util/missing-symbol", test_missing_symbol_keeps_nothing);
        return g_test_run();
}
