/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* JSON from untrusted peers goes through here: size and NUL checks first, then json-glib, then a depth
 * check, then declarative field tables. GError stays inside this module; callers see -errno plus a
 * malloc'd message. */

/* Parse data[0..size) into a root node. Rejects: size > max_size (-EFBIG), embedded NUL (-EBADMSG),
 * invalid JSON (-EBADMSG), nesting deeper than JSON_DEPTH_MAX (-ELOOP). */
int json_parse_bounded(const char *data, size_t size, size_t max_size, JsonNode **ret, char **ret_error);
/* The same for the regular file name in dir_fd (not followed if a symlink), read up to max_size: a record
 * in a state directory is read as hostile as a peer's bytes. -ENOENT when it is absent. */
int json_parse_file_at(int dir_fd, const char *name, size_t max_size, JsonNode **ret, char **ret_error);

typedef enum JsonFieldType {
        JSON_FIELD_STRING, /* char*, strdup'd; rejects strings containing NUL */
        JSON_FIELD_INT64,  /* int64_t */
        JSON_FIELD_UINT64, /* uint64_t, rejects negatives and non-integers */
        JSON_FIELD_BOOL,   /* bool */
        JSON_FIELD_STRV,   /* char**, NULL-terminated, each strdup'd; array of strings only */
        JSON_FIELD_OBJECT, /* JsonObject*, ref'd (borrow the node's lifetime, caller unrefs) */
        JSON_FIELD_ARRAY,  /* JsonArray*, ref'd */
        JSON_FIELD_CUSTOM, /* dispatch(node, (char*)target + offset, userdata, ret_error) */
} JsonFieldType;

typedef enum JsonFieldFlags {
        JSON_MANDATORY = 1 << 0, /* missing → -EBADMSG "missing field 'x'" */
        JSON_NULLABLE = 1 << 1,  /* null is accepted and leaves the target untouched */
} JsonFieldFlags;

typedef struct JsonField {
        const char *name;
        JsonFieldType type;
        size_t offset;
        JsonFieldFlags flags;
        int (*dispatch)(JsonNode *node, void *target, void *userdata, char **ret_error);
} JsonField;

/* Fill target from object according to the table (terminated by a {} entry). Unknown members are
 * ignored (the OCI specs allow them). A wrong type → -EBADMSG "field 'x' must be a string". */
int json_dispatch(JsonObject *object, const JsonField table[], void *target, void *userdata,
                  char **ret_error);

/* Helpers for the ret_error convention above. json_set_error() replaces *ret_error (if ret_error is
 * non-NULL) with the formatted message and returns -abs(error). json_prefix_error() turns an existing
 * message m into "<prefix>: m" (no-op when there is none), to say where in a document it happened. */
int json_set_error(char **ret_error, int error, const char *format, ...)
        __attribute__((format(printf, 3, 4)));
int json_prefix_error(char **ret_error, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Serialise a node compactly (malloc'd, NUL-terminated). */
char *json_to_string_compact(JsonNode *node);

/* The member's array, or NULL when it is missing or not an array. Unlike json_object_get_array_member(),
 * which g_critical()s on a wrong type, this is meant for untrusted documents. */
JsonArray *json_object_get_array_or_null(JsonObject *object, const char *name);
/* The same for a string and an object member (object may be NULL). */
const char *json_object_get_string_or_null(JsonObject *object, const char *name);
JsonObject *json_object_get_object_or_null(JsonObject *object, const char *name);

static inline void json_node_unrefp(JsonNode **n) {
        if (*n)
                json_node_unref(*n);
}
#define _cleanup_json_node_ __attribute__((cleanup(json_node_unrefp)))
