/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int max_level = LOG_INFO;
static const char *log_prefix;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_prefix(const char *prefix) {
        log_prefix = prefix;
}

void log_parse_environment(void) {
        const char *e = getenv("BERTH_LOG_LEVEL");

        if (!e)
                return;
        if (streq(e, "debug"))
                max_level = LOG_DEBUG;
        else if (streq(e, "info"))
                max_level = LOG_INFO;
        else if (streq(e, "notice"))
                max_level = LOG_NOTICE;
        else if (streq(e, "warning"))
                max_level = LOG_WARNING;
        else if (streq(e, "err") || streq(e, "error"))
                max_level = LOG_ERR;
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format,
                 ...) {
        char buf[2048];
        va_list ap;

        /* %m must print the error we were handed, not whatever errno happens to hold. */
        errno = abs(error);
        va_start(ap, format);
        (void) vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        if (max_level >= LOG_DEBUG)
                fprintf(stderr, "<%d>%s%s%s:%d %s\n", level, log_prefix ?: "", log_prefix ? ": " : "", file,
                        line, buf);
        else
                fprintf(stderr, "<%d>%s%s%s\n", level, log_prefix ?: "", log_prefix ? ": " : "", buf);
        fflush(stderr);

        return -abs(error);
}
