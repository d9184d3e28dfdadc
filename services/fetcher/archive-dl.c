/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define ARCHIVE_DL_IMPLEMENTATION 1
#include "archive-dl.h"
#include "dlopen-util.h"

#define ARCHIVE_DL_DEFINE(f) typeof(f) *sym_##f = NULL;
ARCHIVE_DL_FUNCTIONS(ARCHIVE_DL_DEFINE)
#undef ARCHIVE_DL_DEFINE

int archive_dl_open(const char **ret_error) {
        static void *handle = NULL;

#define ARCHIVE_DL_ARG(f) DLSYM_ARG(f),
        return dlopen_symbols(&handle, "libarchive.so.13", ret_error,
                              ARCHIVE_DL_FUNCTIONS(ARCHIVE_DL_ARG) NULL);
#undef ARCHIVE_DL_ARG
}
