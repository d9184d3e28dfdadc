/* SPDX-License-Identifier: LGPL-2.1-or-later */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf(), stpcpy() */
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fs-util.h"
#include "json-util.h"
#include "berth-limits.h"
#include "macro.h"

int json_set_error(char **ret_error, int error, const char *format, ...) {
        va_list ap;

        error = -abs(error);
        if (!ret_error)
                return error;

        free(*ret_error);
        *ret_error = NULL;

        va_start(ap, format);
        if (vasprintf_safe(ret_error, format, ap) < 0)
                *ret_error = NULL;
        va_end(ap);

        return error;
}

int json_prefix_error(char **ret_error, const char *format, ...) {
        _cleanup_free_ char *prefix = NULL;
        va_list ap;
        char *joined;
        int k;

        if (!ret_error || !*ret_error)
                return 0;

        va_start(ap, format);
        k = vasprintf_safe(&prefix, format, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;

        if (asprintf_safe(&joined, "%s: %s", prefix, *ret_error) < 0)
                return -ENOMEM;

        free(*ret_error);
        *ret_error = joined;
        return 0;
}

/* json-glib's parser recurses once per nesting level, so a 4 MiB "[[[[…" would exhaust the stack
 * before we ever see a tree. Scan the raw bytes first: count container depth outside strings, and
 * refuse escaped NUL characters, which json-glib would silently truncate strings at (so two parsers
 * could disagree about a value). Also refuse anything that is not JSON outside strings. */
static int json_prescan(const char *data, size_t size, char **ret_error) {
        unsigned depth = 0;
        bool in_string = false;

        for (size_t i = 0; i < size; i++) {
                char c = data[i];

                if (in_string) {
                        if (c == '"')
                                in_string = false;
                        else if (c == '\\') {
                                if (i + 1 < size && data[i + 1] == 'u' && i + 5 < size &&
                                    memcmp(data + i + 2, "0000", 4) == 0)
                                        return json_set_error(
                                                ret_error, EBADMSG,
                                                "JSON string contains an escaped NUL character");
                                i++; /* skip the escaped character, so \" does not end the string */
                        }
                        continue;
                }

                switch (c) {
                case '"':
                        in_string = true;
                        break;
                case '[':
                case '{':
                        if (++depth > JSON_DEPTH_MAX)
                                return json_set_error(ret_error, ELOOP, "JSON nested deeper than %u levels",
                                                      JSON_DEPTH_MAX);
                        break;
                case ']':
                case '}':
                        if (depth > 0)
                                depth--;
                        break;
                case ' ':
                case '\t':
                case '\n':
                case '\r':
                case ':':
                case ',':
                case '-':
                case '+':
                case '.':
                case '0' ... '9':
                case 'a' ... 'z':
                case 'E':
                        break;
                default:
                        /* Nothing else is JSON outside a string. Refusing it here (comments, single
                         * quotes, …) keeps our idea of where strings are identical to json-glib's,
                         * which is what makes the depth count above trustworthy. */
                        return json_set_error(ret_error, EBADMSG,
                                              "invalid JSON: unexpected character 0x%02x at offset %zu",
                                              (unsigned char) c, i);
                }
        }

        return 0;
}

/* The prescan already bounds depth; this checks the tree json-glib actually built, so the limit holds
 * even if the two ever disagree about what is a string. Recursion is bounded by JSON_DEPTH_MAX. */
static int json_check_depth(JsonNode *node, unsigned depth) {
        switch (json_node_get_node_type(node)) {
        case JSON_NODE_OBJECT: {
                JsonObjectIter iter;
                JsonNode *member;

                if (depth + 1 > JSON_DEPTH_MAX)
                        return -ELOOP;

                json_object_iter_init(&iter, json_node_get_object(node));
                while (json_object_iter_next(&iter, NULL, &member)) {
                        int r = json_check_depth(member, depth + 1);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        case JSON_NODE_ARRAY: {
                JsonArray *array = json_node_get_array(node);
                guint n = json_array_get_length(array);

                if (depth + 1 > JSON_DEPTH_MAX)
                        return -ELOOP;

                for (guint i = 0; i < n; i++) {
                        int r = json_check_depth(json_array_get_element(array, i), depth + 1);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        default:
                return 0;
        }
}

int json_parse_bounded(const char *data, size_t size, size_t max_size, JsonNode **ret, char **ret_error) {
        g_autoptr(JsonParser) parser = NULL;
        g_autoptr(GError) error = NULL;
        JsonNode *root;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!ret || (!data && size > 0))
                return -EINVAL;

        if (size > max_size || size > G_MAXSSIZE)
                return json_set_error(ret_error, EFBIG,
                                      "JSON document of %zu bytes exceeds the limit of %zu bytes", size,
                                      max_size);
        if (size == 0)
                return json_set_error(ret_error, EBADMSG, "empty JSON document");
        if (memchr(data, 0, size))
                return json_set_error(ret_error, EBADMSG, "JSON document contains a NUL byte");

        r = json_prescan(data, size, ret_error);
        if (r < 0)
                return r;

        parser = json_parser_new_immutable();
        if (!json_parser_load_from_data(parser, data, (gssize) size, &error))
                return json_set_error(ret_error, EBADMSG, "invalid JSON: %s",
                                      error && error->message ? error->message : "parse error");

        root = json_parser_get_root(parser);
        if (!root)
                return json_set_error(ret_error, EBADMSG, "empty JSON document");

        r = json_check_depth(root, 0);
        if (r < 0)
                return json_set_error(ret_error, r, "JSON nested deeper than %u levels", JSON_DEPTH_MAX);

        *ret = json_node_ref(root);
        return 0;
}

static const char *json_field_type_expectation(JsonFieldType type) {
        switch (type) {
        case JSON_FIELD_STRING:
                return "a string";
        case JSON_FIELD_INT64:
                return "an integer";
        case JSON_FIELD_UINT64:
                return "a non-negative integer";
        case JSON_FIELD_BOOL:
                return "a boolean";
        case JSON_FIELD_STRV:
                return "an array of strings";
        case JSON_FIELD_OBJECT:
                return "an object";
        case JSON_FIELD_ARRAY:
                return "an array";
        default:
                return "valid";
        }
}

static bool json_node_is_value_of(JsonNode *node, GType type) {
        return JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == type;
}

/* Strings are copied into C strings that end up in paths, logs and bus messages: insist on UTF-8. */
static int json_node_dup_string_checked(JsonNode *node, char **ret) {
        const char *s;
        char *copy;

        if (!json_node_is_value_of(node, G_TYPE_STRING))
                return -EBADMSG;

        s = json_node_get_string(node);
        if (!s || !g_utf8_validate(s, -1, NULL))
                return -EBADMSG;

        copy = strdup(s);
        if (!copy)
                return -ENOMEM;

        *ret = copy;
        return 0;
}

static int json_dispatch_strv(JsonNode *node, char ***target) {
        JsonArray *array;
        char **l;
        guint n;
        int r;

        if (!JSON_NODE_HOLDS_ARRAY(node))
                return -EBADMSG;

        array = json_node_get_array(node);
        n = json_array_get_length(array);

        l = calloc((size_t) n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;

        for (guint i = 0; i < n; i++) {
                r = json_node_dup_string_checked(json_array_get_element(array, i), &l[i]);
                if (r < 0) {
                        strv_free(l);
                        return r;
                }
        }

        strv_free(*target);
        *target = l;
        return 0;
}

static int json_dispatch_one(const JsonField *f, JsonNode *node, void *target, void *userdata,
                             char **ret_error) {
        void *p = (char *) target + f->offset;
        int r;

        switch (f->type) {
        case JSON_FIELD_STRING: {
                char *s;

                r = json_node_dup_string_checked(node, &s);
                if (r < 0)
                        return r;
                free(*(char **) p);
                *(char **) p = s;
                return 0;
        }
        case JSON_FIELD_INT64:
                if (!json_node_is_value_of(node, G_TYPE_INT64))
                        return -EBADMSG;
                *(int64_t *) p = json_node_get_int(node);
                return 0;

        case JSON_FIELD_UINT64: {
                gint64 v;

                if (!json_node_is_value_of(node, G_TYPE_INT64))
                        return -EBADMSG;
                v = json_node_get_int(node);
                if (v < 0)
                        return -EBADMSG;
                *(uint64_t *) p = (uint64_t) v;
                return 0;
        }
        case JSON_FIELD_BOOL:
                if (!json_node_is_value_of(node, G_TYPE_BOOLEAN))
                        return -EBADMSG;
                *(bool *) p = json_node_get_boolean(node);
                return 0;

        case JSON_FIELD_STRV:
                return json_dispatch_strv(node, (char ***) p);

        case JSON_FIELD_OBJECT:
                if (!JSON_NODE_HOLDS_OBJECT(node))
                        return -EBADMSG;
                if (*(JsonObject **) p)
                        json_object_unref(*(JsonObject **) p);
                *(JsonObject **) p = json_node_dup_object(node);
                return 0;

        case JSON_FIELD_ARRAY:
                if (!JSON_NODE_HOLDS_ARRAY(node))
                        return -EBADMSG;
                if (*(JsonArray **) p)
                        json_array_unref(*(JsonArray **) p);
                *(JsonArray **) p = json_node_dup_array(node);
                return 0;

        case JSON_FIELD_CUSTOM:
                if (!f->dispatch)
                        return -EINVAL;
                return f->dispatch(node, p, userdata, ret_error);

        default:
                return -EINVAL;
        }
}

int json_dispatch(JsonObject *object, const JsonField table[], void *target, void *userdata,
                  char **ret_error) {
        int r;

        if (!object || !table || !target)
                return -EINVAL;

        for (const JsonField *f = table; f->name; f++) {
                JsonNode *node = json_object_get_member(object, f->name);

                if (!node) {
                        if (f->flags & JSON_MANDATORY)
                                return json_set_error(ret_error, EBADMSG, "missing field '%s'", f->name);
                        continue;
                }

                if (JSON_NODE_HOLDS_NULL(node)) {
                        if (f->flags & JSON_NULLABLE)
                                continue;
                        if (f->type != JSON_FIELD_CUSTOM)
                                return json_set_error(ret_error, EBADMSG, "field '%s' must be %s, not null",
                                                      f->name, json_field_type_expectation(f->type));
                }

                r = json_dispatch_one(f, node, target, userdata, ret_error);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        if (f->type == JSON_FIELD_CUSTOM) {
                                /* The dispatcher said what is wrong; add where. */
                                if (ret_error && *ret_error)
                                        (void) json_prefix_error(ret_error, "field '%s'", f->name);
                                else
                                        (void) json_set_error(ret_error, r, "field '%s' is invalid",
                                                              f->name);
                                return r;
                        }
                        if (f->type == JSON_FIELD_STRING || f->type == JSON_FIELD_STRV)
                                return json_set_error(ret_error, r, "field '%s' must be %s (valid UTF-8)",
                                                      f->name, json_field_type_expectation(f->type));
                        return json_set_error(ret_error, r, "field '%s' must be %s", f->name,
                                              json_field_type_expectation(f->type));
                }
        }

        return 0;
}

char *json_to_string_compact(JsonNode *node) {
        g_autoptr(JsonGenerator) generator = NULL;
        g_autofree char *s = NULL;

        if (!node)
                return NULL;

        generator = json_generator_new();
        json_generator_set_pretty(generator, false);
        json_generator_set_root(generator, node);

        s = json_generator_to_data(generator, NULL);
        if (!s)
                return NULL;

        /* Callers free() it; do not hand out g_malloc'd memory. */
        return strdup(s);
}

JsonArray *json_object_get_array_or_null(JsonObject *object, const char *name) {
        JsonNode *node = object ? json_object_get_member(object, name) : NULL;

        return node && JSON_NODE_HOLDS_ARRAY(node) ? json_node_get_array(node) : NULL;
}

const char *json_object_get_string_or_null(JsonObject *object, const char *name) {
        JsonNode *node = object ? json_object_get_member(object, name) : NULL;

        return node && JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING
                       ? json_node_get_string(node)
                       : NULL;
}

JsonObject *json_object_get_object_or_null(JsonObject *object, const char *name) {
        JsonNode *node = object ? json_object_get_member(object, name) : NULL;

        return node && JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
}

int json_parse_file_at(int dir_fd, const char *name, size_t max_size, JsonNode **ret, char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        if (ret_error)
                *ret_error = NULL;
        fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                return json_set_error(ret_error, r, "cannot open %s: %s", name, strerror(-r));
        }
        r = read_regular_file_fd(fd, max_size, &data, &size);
        if (r < 0)
                return json_set_error(ret_error, r, "cannot read %s: %s", name, strerror(-r));
        return json_parse_bounded(data, size, max_size, ret, ret_error);
}
