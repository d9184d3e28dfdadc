/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One record of a container log (lib/shim-protocol.h): "<RFC 3339 time> <stdout|stderr> <F|P> <text>". */
typedef struct LogRecord {
        uint64_t time_usec;
        size_t time_len; /* the time's length at the start of the line */
        bool stderr_stream;
        bool partial;     /* P: the line goes on in the next record */
        const char *text; /* borrowed, NUL-terminated */
} LogRecord;

int log_record_parse(const char *line, LogRecord *ret);

/* RFC 3339 ("2024-01-02T15:04:05Z", fractions and ±hh:mm offsets allowed) → µs since the epoch. */
int parse_rfc3339(const char *s, size_t len, uint64_t *ret);
/* --since: RFC 3339, or a duration before now ("10m", "1h30m", "45s", "2d"), or seconds since the epoch. */
int log_parse_since(const char *s, uint64_t *ret_usec);
/* "2024-01-02T15:04:05.123456Z" for usec, into buf (at least 32 bytes). */
void format_rfc3339(uint64_t usec, char *buf, size_t size);

/* The options of `logs`, shared with `start -a`. */
typedef struct LogOptions {
        bool follow, timestamps, tail_set;
        uint64_t tail;
        uint64_t since_usec;
} LogOptions;
