/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdarg.h>

#include "macro.h"

/* An (errno, message) record. It is a fixed-size struct on purpose: the container's init child writes it
 * as is over a socket or pipe to its parent (crun's libcrun_error_t, flattened), so it must not hold
 * pointers. error is a positive errno; 0 means "no error". */
#define BERTH_ERROR_MESSAGE_MAX 512

typedef struct BerthError {
        int error;
        char message[BERTH_ERROR_MESSAGE_MAX];
} BerthError;

/* Sets err (if non-NULL) to (abs(error), formatted message) and returns -abs(error), so that callers can
 * write "return berth_error_set(err, r, "Failed to mount '%s'", path);". A trailing ": %m"-like errno text
 * is appended by the formatter when append_strerror is used (see below). */
int berth_error_set(BerthError *err, int error, const char *format, ...) _printf_(3, 4);

/* Same, with strerror(error) appended: "<message>: <strerror>". */
int berth_error_setm(BerthError *err, int error, const char *format, ...) _printf_(3, 4);

/* Prepends "<prefix>: " to an error already set; returns -err->error (or -EIO when none was set). */
int berth_error_prefix(BerthError *err, const char *format, ...) _printf_(2, 3);
