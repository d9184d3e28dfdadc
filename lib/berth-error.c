/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>

#include "berth-error.h"

static int berth_error_vset(BerthError *err, int error, bool with_strerror, const char *format, va_list ap) {
        error = abs(error);
        if (error == 0)
                error = EIO; /* an error record never says "success" */
        if (!err)
                return -error;

        err->error = error;
        int n = vsnprintf(err->message, sizeof(err->message), format, ap);
        if (with_strerror && n >= 0 && (size_t) n < sizeof(err->message))
                (void) snprintf(err->message + n, sizeof(err->message) - (size_t) n, ": %s",
                                strerror(error));
        return -error;
}

int berth_error_set(BerthError *err, int error, const char *format, ...) {
        va_list ap;
        va_start(ap, format);
        int r = berth_error_vset(err, error, false, format, ap);
        va_end(ap);
        return r;
}

int berth_error_setm(BerthError *err, int error, const char *format, ...) {
        va_list ap;
        va_start(ap, format);
        int r = berth_error_vset(err, error, true, format, ap);
        va_end(ap);
        return r;
}

int berth_error_prefix(BerthError *err, const char *format, ...) {
        char prefix[BERTH_ERROR_MESSAGE_MAX], old[BERTH_ERROR_MESSAGE_MAX];
        va_list ap;

        if (!err)
                return -EIO;
        if (err->error == 0)
                err->error = EIO;

        va_start(ap, format);
        (void) vsnprintf(prefix, sizeof(prefix), format, ap);
        va_end(ap);

        memcpy(old, err->message, sizeof(old));
        old[sizeof(old) - 1] = '\0';
        /* Built by hand: the result is cut at the buffer's end, which is what we want. */
        size_t n = strnlen(prefix, sizeof(err->message) - 1);
        memcpy(err->message, prefix, n);
        for (const char *s = ": "; *s && n < sizeof(err->message) - 1; s++)
                err->message[n++] = *s;
        size_t m = strnlen(old, sizeof(old));
        if (m > sizeof(err->message) - 1 - n)
                m = sizeof(err->message) - 1 - n;
        memcpy(err->message + n, old, m);
        err->message[n + m] = '\0';
        return -err->error;
}
