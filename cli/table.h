/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

/* The one printer of the list commands (images ls, images usage, snapshots ls, content ls): rows of
 * cells, printed as a text table with a header, as a JSON array of objects (--json), or as the first
 * column alone (-q). Each cell carries its text form and its JSON form, so the two outputs cannot drift
 * apart, and every list command reads the same options. */

typedef struct TableColumn {
        const char *header; /* text header; NULL: the column is JSON-only */
        int width; /* printf field width, negative: left-aligned; the last text column is unpadded */
        const char *json_key; /* member name in --json; NULL: text-only */
} TableColumn;

typedef enum TableMode {
        TABLE_TEXT,
        TABLE_JSON,
        TABLE_QUIET, /* the first column of each row, nothing else */
} TableMode;

typedef struct Table Table;

Table *table_new(const TableColumn *columns, size_t n_columns, TableMode mode);
Table *table_free(Table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Table *, table_free);

/* Cells are added left to right, one per column; the row ends by itself after the last column. */
void table_add_string(Table *t, const char *s);
/* Text: the byte count as "1.5 MiB"; JSON: the number. */
void table_add_bytes(Table *t, uint64_t bytes);
void table_add_uint(Table *t, uint64_t v);
/* Text: yes or no; JSON: a boolean. */
void table_add_bool(Table *t, bool b, const char *yes, const char *no);
/* Text: joined with ',' ("-" when empty); JSON: an array of strings. */
void table_add_strv(Table *t, char **l);
/* Anything else: text as given, JSON node taken over (NULL: null). */
void table_add_cell(Table *t, const char *text, JsonNode *json);

/* Prints the table on stdout in its mode. */
void table_print(Table *t);

/* Options shared by every list verb: --json, -q/--quiet, --help (prints usage_text; returns 1). Free
 * arguments (at most max_free of them) go to free_args[]. Prints "berthctl: <what>: unknown argument"
 * and returns -EINVAL for anything else. 0 otherwise, with *ret_mode set. */
int table_parse_args(const char *what, const char *usage_text, int argc, char *argv[],
                     const char **free_args, size_t max_free, TableMode *ret_mode);
