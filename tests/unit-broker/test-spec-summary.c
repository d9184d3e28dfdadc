/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* spec_summary_build(): the summary of berth's own config.json (the spec builder's golden output), and
 * refusals of what a hostile supervisor could send instead. */
#include <glib.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"
#include "spec-summary.h"

static JsonObject *summary(const char *text, JsonNode **keep) {
        _cleanup_free_ char *json = NULL, *err = NULL;

        g_assert_cmpint(spec_summary_build(text, strlen(text), &json, &err), ==, 0);
        g_assert_null(err);
        g_assert_cmpint(json_parse_bounded(json, strlen(json), SIZE_MAX, keep, NULL), ==, 0);
        return json_node_get_object(*keep);
}

static void test_golden(void) {
        g_autofree char *text = NULL, *path = g_build_filename(g_getenv("GOLDEN_DIR"), "default.json", NULL);
        _cleanup_(json_node_unrefp) JsonNode *keep = NULL;
        JsonObject *s, *p;

        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        s = summary(text, &keep);
        p = json_object_get_object_member(s, "Process");
        g_assert_cmpstr(json_array_get_string_element(json_object_get_array_member(p, "Args"), 0), ==, "sh");
        g_assert_cmpstr(json_object_get_string_member(p, "Cwd"), ==, "/");
        g_assert_false(json_object_get_boolean_member(p, "Terminal"));
        g_assert_true(json_object_get_boolean_member(p, "NoNewPrivileges"));
        g_assert_cmpint(json_array_get_length(json_object_get_array_member(
                                json_object_get_object_member(p, "User"), "AdditionalGids")),
                        ==, 2);
        g_assert_cmpint(json_array_get_length(json_object_get_array_member(
                                json_object_get_object_member(p, "Capabilities"), "Effective")),
                        ==, 11);
        g_assert_cmpstr(json_object_get_string_member(s, "Seccomp"), ==, "default");
        g_assert_cmpint(json_object_get_int_member(s, "MaskedPaths"), >, 0);
        g_assert_cmpint(json_object_get_int_member(s, "ReadonlyPaths"), >, 0);
        g_assert_cmpint(json_object_get_int_member(s, "Devices"), ==, 0);
        g_assert_cmpint(json_array_get_length(json_object_get_array_member(s, "Namespaces")), ==, 6);
        g_assert_true(json_object_get_null_member(json_object_get_object_member(s, "Resources"), "Memory"));
}

static void test_values(void) {
        _cleanup_(json_node_unrefp) JsonNode *keep = NULL;
        JsonObject *s = summary(
                "{\"process\":{\"args\":[\"a\"]},\"linux\":{\"resources\":{\"memory\":{\"limit\":"
                "67108864},\"devices\":[{\"allow\":true,\"access\":\"rwm\"}]},\"devices\":[{\"path\":"
                "\"/dev/kmsg\"}]},\"annotations\":{\"org.berth.seccomp\":\"unconfined\"}}",
                &keep);
        JsonObject *res = json_object_get_object_member(s, "Resources");

        g_assert_cmpint(json_object_get_int_member(res, "Memory"), ==, 64 << 20);
        g_assert_true(json_object_get_boolean_member(res, "DevicesAllowAll"));
        g_assert_cmpint(json_object_get_int_member(s, "Devices"), ==, 1);
        g_assert_cmpstr(json_object_get_string_member(s, "Seccomp"), ==, "unconfined");
}

static void test_hostile(void) {
        static const char *const bad[] = {
                "[]",
                "{}",                                       /* no process */
                "{\"process\":{\"args\":\"sh\"}}",          /* wrong type */
                "{\"process\":{\"args\":[1]}}",             /* wrong element type */
                "{\"process\":{\"user\":{\"uid\":\"0\"}}}", /* string uid */
                "{\"process\":{},\"mounts\":[\"x\"]}",      /* mount not an object */
                "{\"process\":{},\"linux\":{\"resources\":{\"memory\":{\"limit\":1.5}}}}",
                "{\"process\":{},\"annotations\":{\"org.berth.seccomp\":false}}",
                "{\"process\":{}", /* truncated */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *json = NULL, *err = NULL;

                g_assert_cmpint(spec_summary_build(bad[i], strlen(bad[i]), &json, &err), <, 0);
                g_assert_null(json);
                g_assert_nonnull(err);
        }

        /* Over the size cap, and nested past the depth cap. */
        {
                size_t n = SPEC_SUMMARY_INPUT_MAX + 1;
                g_autofree char *big = g_malloc(n);
                _cleanup_free_ char *json = NULL, *err = NULL;

                memset(big, ' ', n);
                big[0] = '{';
                big[n - 1] = '}';
                g_assert_cmpint(spec_summary_build(big, n, &json, &err), ==, -EFBIG);
        }
        {
                GString *deep = g_string_new("{\"process\":{\"args\":");
                _cleanup_free_ char *json = NULL, *err = NULL;

                for (int i = 0; i < 10000; i++)
                        g_string_append_c(deep, '[');
                g_assert_cmpint(spec_summary_build(deep->str, deep->len, &json, &err), <, 0);
                g_string_free(deep, true);
        }
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/spec-summary/golden", test_golden);
        g_test_add_func("/spec-summary/values", test_values);
        g_test_add_func("/spec-summary/hostile", test_hostile);
        return g_test_run();
}
