/* SPDX-License-Identifier: LGPL-2.1-or-later */
#define CURL_DL_IMPLEMENTATION 1
#include "curl-dl.h"
#include "dlopen-util.h"
#include "log.h"

#define CURL_DL_DEFINE(f) typeof(f) *sym_##f = NULL;
CURL_DL_FUNCTIONS(CURL_DL_DEFINE)
#undef CURL_DL_DEFINE

int curl_dl_open(void) {
        static void *handle = NULL;
        const char *error = NULL;
        int r;

#define CURL_DL_ARG(f) DLSYM_ARG(f),
        r = dlopen_symbols(&handle, "libcurl.so.4", &error, CURL_DL_FUNCTIONS(CURL_DL_ARG) NULL);
#undef CURL_DL_ARG
        if (r < 0)
                return log_debug_errno(r, "Failed to load libcurl: %s", error ? error : "unknown error");
        return 0;
}
