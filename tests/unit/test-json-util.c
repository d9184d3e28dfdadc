/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth-limits.h"
#include "json-util.h"
#include "macro.h"

static int parse(const char *s, JsonNode **ret, char **ret_error) {
        return json_parse_bounded(s, strlen(s), 1024 * 1024, ret, ret_error);
}

static void test_parse_ok(void) {
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_free_ char *error = NULL, *s = NULL;

        g_assert_cmpint(parse("{\"a\": [1, 2, {\"b\": \"c\"}], \"d\": null}", &root, &error), ==, 0);
        g_assert_null(error);
        g_assert_true(JSON_NODE_HOLDS_OBJECT(root));

        s = json_to_string_compact(root);
        g_assert_cmpstr(s, ==, "{\"a\":[1,2,{\"b\":\"c\"}],\"d\":null}");

        g_assert_null(json_to_string_compact(NULL));
}

static void test_parse_bad(void) {
        static const struct {
                const char *json;
                int error;
        } cases[] = {
                { "", -EBADMSG },
                { "{", -EBADMSG },
                { "{\"a\": }", -EBADMSG },
                { "{'a': 1}", -EBADMSG },
                { "{\"a\": 1} /* comment */", -EBADMSG },
                { "// c\n{}", -EBADMSG },
                { "# c\n{}", -EBADMSG },
                { "{\"a\": \"x\\u0000y\"}", -EBADMSG },
                { "[1, 2", -EBADMSG },
                { "{\"a\": 1}}", -EBADMSG },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                _cleanup_json_node_ JsonNode *root = NULL;
                _cleanup_free_ char *error = NULL;

                g_test_message("bad json: %s", cases[i].json);
                g_assert_cmpint(parse(cases[i].json, &root, &error), ==, cases[i].error);
                g_assert_null(root);
                g_assert_nonnull(error);
                g_test_message("  → %s", error);
        }
}

static void test_parse_nul(void) {
        static const char doc[] = "{\"a\": \"b\0c\"}";
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_free_ char *error = NULL;

        g_assert_cmpint(json_parse_bounded(doc, sizeof(doc) - 1, 1024, &root, &error), ==, -EBADMSG);
        g_assert_nonnull(strstr(error, "NUL"));
        g_assert_null(root);
}

static void test_parse_oversize(void) {
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_free_ char *error = NULL;
        const char *doc = "{\"a\": \"0123456789\"}";

        g_assert_cmpint(json_parse_bounded(doc, strlen(doc), strlen(doc) - 1, &root, &error), ==, -EFBIG);
        g_assert_nonnull(error);
        g_assert_null(root);
        error = mfree(error);

        g_assert_cmpint(json_parse_bounded(doc, strlen(doc), strlen(doc), &root, &error), ==, 0);
}

static char *nested(unsigned depth, char open, char close) {
        char *s = g_malloc(depth * 2 + 1);

        memset(s, open, depth);
        memset(s + depth, close, depth);
        s[depth * 2] = '\0';
        return s;
}

static void test_depth(void) {
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_free_ char *error = NULL;
        g_autofree char *ok = nested(JSON_DEPTH_MAX, '[', ']');
        g_autofree char *deep = nested(JSON_DEPTH_MAX + 1, '[', ']');
        g_autofree char *bomb = NULL;
        g_autoptr(GString) objects = g_string_new(NULL);

        g_assert_cmpint(parse(ok, &root, NULL), ==, 0);
        json_node_unref(g_steal_pointer(&root));

        g_assert_cmpint(parse(deep, &root, &error), ==, -ELOOP);
        g_assert_nonnull(strstr(error, "deeper"));
        error = mfree(error);

        /* 4 MiB of '[' without the closing brackets: must fail fast and not blow the stack. */
        bomb = g_malloc(4 * 1024 * 1024 + 1);
        memset(bomb, '[', 4 * 1024 * 1024);
        bomb[4 * 1024 * 1024] = '\0';
        g_assert_cmpint(json_parse_bounded(bomb, 4 * 1024 * 1024, 4 * 1024 * 1024, &root, &error), ==,
                        -ELOOP);
        error = mfree(error);

        /* Objects nest too. */
        for (unsigned i = 0; i < JSON_DEPTH_MAX + 1; i++)
                g_string_append(objects, "{\"a\":");
        g_string_append(objects, "1");
        for (unsigned i = 0; i < JSON_DEPTH_MAX + 1; i++)
                g_string_append_c(objects, '}');
        g_assert_cmpint(parse(objects->str, &root, &error), ==, -ELOOP);
        error = mfree(error);

        /* Brackets inside strings, escaped quotes included, do not count. */
        g_autofree char *in_string = g_strdup_printf("[\"\\\"%s\"]", deep);
        g_assert_cmpint(parse(in_string, &root, &error), ==, 0);
}

typedef struct {
        char *s;
        int64_t i;
        uint64_t u;
        bool b;
        char **strv;
        JsonObject *obj;
        JsonArray *arr;
        int custom_calls;
        char *custom;
} Target;

static void target_done(Target *t) {
        free(t->s);
        for (char **p = t->strv; p && *p; p++)
                free(*p);
        free(t->strv);
        if (t->obj)
                json_object_unref(t->obj);
        if (t->arr)
                json_array_unref(t->arr);
        free(t->custom);
}

static int dispatch_custom(JsonNode *node, void *target, void *userdata, char **ret_error) {
        char **p = target;
        int *calls = userdata;

        (*calls)++;
        if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING)
                return json_set_error(ret_error, EBADMSG, "must be a shouting string");
        if (strcmp(json_node_get_string(node), "LOUD") != 0)
                return json_set_error(ret_error, EBADMSG, "must be LOUD");
        *p = strdup("LOUD");
        return 0;
}

static const JsonField table[] = { { "s", JSON_FIELD_STRING, offsetof(Target, s), JSON_MANDATORY },
                                   { "i", JSON_FIELD_INT64, offsetof(Target, i), 0 },
                                   { "u", JSON_FIELD_UINT64, offsetof(Target, u), 0 },
                                   { "b", JSON_FIELD_BOOL, offsetof(Target, b), 0 },
                                   { "strv", JSON_FIELD_STRV, offsetof(Target, strv), JSON_NULLABLE },
                                   { "obj", JSON_FIELD_OBJECT, offsetof(Target, obj), 0 },
                                   { "arr", JSON_FIELD_ARRAY, offsetof(Target, arr), 0 },
                                   { "custom", JSON_FIELD_CUSTOM, offsetof(Target, custom), 0,
                                     dispatch_custom },
                                   {} };

static int dispatch_str(const char *json, Target *t, char **ret_error) {
        _cleanup_json_node_ JsonNode *root = NULL;
        int r;

        r = parse(json, &root, ret_error);
        g_assert_cmpint(r, ==, 0);
        return json_dispatch(json_node_get_object(root), table, t, &t->custom_calls, ret_error);
}

static void test_dispatch_ok(void) {
        _cleanup_(target_done) Target t = {};
        _cleanup_free_ char *error = NULL;

        g_assert_cmpint(dispatch_str("{\"s\": \"hello\", \"i\": -5, \"u\": 9007199254740993, \"b\": true,"
                                     " \"strv\": [\"a\", \"b\"], \"obj\": {\"x\": 1}, \"arr\": [1],"
                                     " \"custom\": \"LOUD\", \"unknown\": {\"ignored\": true}}",
                                     &t, &error),
                        ==, 0);
        g_assert_null(error);
        g_assert_cmpstr(t.s, ==, "hello");
        g_assert_cmpint(t.i, ==, -5);
        g_assert_cmpuint(t.u, ==, 9007199254740993ULL);
        g_assert_true(t.b);
        g_assert_nonnull(t.strv);
        g_assert_cmpstr(t.strv[0], ==, "a");
        g_assert_cmpstr(t.strv[1], ==, "b");
        g_assert_null(t.strv[2]);
        g_assert_nonnull(t.obj);
        g_assert_true(json_object_has_member(t.obj, "x"));
        g_assert_cmpuint(json_array_get_length(t.arr), ==, 1);
        g_assert_cmpstr(t.custom, ==, "LOUD");
        g_assert_cmpint(t.custom_calls, ==, 1);
}

static void test_dispatch_nullable(void) {
        _cleanup_(target_done) Target t = {};

        g_assert_cmpint(dispatch_str("{\"s\": \"x\", \"strv\": null}", &t, NULL), ==, 0);
        g_assert_null(t.strv);

        g_assert_cmpint(dispatch_str("{\"s\": \"x\", \"strv\": []}", &t, NULL), ==, 0);
        g_assert_nonnull(t.strv);
        g_assert_null(t.strv[0]);
}

static void test_dispatch_bad(void) {
        static const struct {
                const char *json;
                const char *message;
        } cases[] = {
                { "{}", "missing field 's'" },
                { "{\"s\": null}", "field 's' must be a string" },
                { "{\"s\": 1}", "field 's' must be a string" },
                { "{\"s\": [\"x\"]}", "field 's' must be a string" },
                { "{\"s\": \"x\", \"i\": \"1\"}", "field 'i' must be an integer" },
                { "{\"s\": \"x\", \"i\": 1.5}", "field 'i' must be an integer" },
                { "{\"s\": \"x\", \"u\": -1}", "field 'u' must be a non-negative integer" },
                { "{\"s\": \"x\", \"u\": 1.0}", "field 'u' must be a non-negative integer" },
                { "{\"s\": \"x\", \"u\": null}", "field 'u' must be a non-negative integer" },
                { "{\"s\": \"x\", \"b\": 1}", "field 'b' must be a boolean" },
                { "{\"s\": \"x\", \"strv\": \"a\"}", "field 'strv' must be an array of strings" },
                { "{\"s\": \"x\", \"strv\": [\"a\", 1]}", "field 'strv' must be an array of strings" },
                { "{\"s\": \"x\", \"strv\": [null]}", "field 'strv' must be an array of strings" },
                { "{\"s\": \"x\", \"obj\": []}", "field 'obj' must be an object" },
                { "{\"s\": \"x\", \"arr\": {}}", "field 'arr' must be an array" },
                { "{\"s\": \"x\", \"custom\": 1}", "field 'custom': must be a shouting string" },
                { "{\"s\": \"x\", \"custom\": \"quiet\"}", "field 'custom': must be LOUD" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                _cleanup_(target_done) Target t = {};
                _cleanup_free_ char *error = NULL;

                g_test_message("dispatch: %s", cases[i].json);
                g_assert_cmpint(dispatch_str(cases[i].json, &t, &error), ==, -EBADMSG);
                g_assert_nonnull(error);
                g_test_message("  → %s", error);
                g_assert_nonnull(strstr(error, cases[i].message));

                /* Without ret_error: only the code. */
                target_done(&t);
                t = (Target){};
                g_assert_cmpint(dispatch_str(cases[i].json, &t, NULL), ==, -EBADMSG);
        }
}

static void test_error_helpers(void) {
        _cleanup_free_ char *error = NULL;

        g_assert_cmpint(json_set_error(NULL, EINVAL, "x"), ==, -EINVAL);
        g_assert_cmpint(json_set_error(&error, -EIO, "a %d", 1), ==, -EIO);
        g_assert_cmpstr(error, ==, "a 1");
        g_assert_cmpint(json_set_error(&error, EIO, "b"), ==, -EIO);
        g_assert_cmpstr(error, ==, "b");
        g_assert_cmpint(json_prefix_error(&error, "at %s", "here"), ==, 0);
        g_assert_cmpstr(error, ==, "at here: b");
}

/* A record in a state directory: a regular file only, never through a symlink, bounded. */
static void test_parse_file_at(void) {
        g_autofree char *dir = g_dir_make_tmp("test-json-file-XXXXXX", NULL);
        g_autofree char *ok = g_build_filename(dir, "ok", NULL);
        g_autofree char *big = g_build_filename(dir, "big", NULL);
        g_autofree char *link = g_build_filename(dir, "link", NULL);
        g_autofree char *sub = g_build_filename(dir, "sub", NULL);
        g_autofree char *msg = NULL;
        JsonNode *root = NULL;
        int dir_fd;

        g_assert_nonnull(dir);
        g_assert_true(g_file_set_contents(ok, "{\"a\":1}", -1, NULL));
        g_assert_true(g_file_set_contents(big, "[1,2,3,4,5,6,7,8,9]", -1, NULL));
        g_assert_cmpint(symlink("ok", link), ==, 0);
        g_assert_cmpint(mkdir(sub, 0700), ==, 0);
        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        g_assert_cmpint(dir_fd, >=, 0);

        g_assert_cmpint(json_parse_file_at(dir_fd, "ok", 64, &root, &msg), ==, 0);
        g_assert_true(JSON_NODE_HOLDS_OBJECT(root));
        g_assert_cmpint(json_object_get_int_member(json_node_get_object(root), "a"), ==, 1);
        json_node_unref(root);
        root = NULL;
        g_assert_cmpint(json_parse_file_at(dir_fd, "absent", 64, &root, &msg), ==, -ENOENT);
        g_assert_nonnull(msg);
        g_clear_pointer(&msg, free);
        g_assert_cmpint(json_parse_file_at(dir_fd, "link", 64, &root, &msg), ==, -ELOOP);
        g_clear_pointer(&msg, free);
        g_assert_cmpint(json_parse_file_at(dir_fd, "big", 8, &root, &msg), ==, -EFBIG);
        g_clear_pointer(&msg, free);
        g_assert_cmpint(json_parse_file_at(dir_fd, "sub", 64, &root, &msg), <, 0);
        g_assert_null(root);

        close(dir_fd);
        g_assert_cmpint(unlink(ok), ==, 0);
        g_assert_cmpint(unlink(big), ==, 0);
        g_assert_cmpint(unlink(link), ==, 0);
        g_assert_cmpint(rmdir(sub), ==, 0);
        g_assert_cmpint(rmdir(dir), ==, 0);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/json-util/parse/ok", test_parse_ok);
        g_test_add_func("/json-util/parse/bad", test_parse_bad);
        g_test_add_func("/json-util/parse/nul", test_parse_nul);
        g_test_add_func("/json-util/parse/oversize", test_parse_oversize);
        g_test_add_func("/json-util/parse/depth", test_depth);
        g_test_add_func("/json-util/dispatch/ok", test_dispatch_ok);
        g_test_add_func("/json-util/dispatch/nullable", test_dispatch_nullable);
        g_test_add_func("/json-util/dispatch/bad", test_dispatch_bad);
        g_test_add_func("/json-util/error-helpers", test_error_helpers);
        g_test_add_func("/json-util/parse-file-at", test_parse_file_at);

        return g_test_run();
}
