/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* --restart parsing (restart-parse.c) and its place in the request parser. */
#include <glib.h>
#include <string.h>

#include "macro.h"
#include "request.h"
#include "restart-parse.h"

static void test_policies(void) {
        RestartPolicy p;
        char buf[RESTART_POLICY_STRING_MAX];

        g_assert_cmpint(restart_policy_parse(NULL, &p), ==, 0);
        g_assert_cmpint(p.mode, ==, RESTART_NO);
        g_assert_cmpint(restart_policy_parse("no", &p), ==, 0);
        g_assert_cmpint(p.mode, ==, RESTART_NO);
        g_assert_cmpint(restart_policy_parse("always", &p), ==, 0);
        g_assert_cmpint(p.mode, ==, RESTART_ALWAYS);
        g_assert_cmpint(restart_policy_parse("unless-stopped", &p), ==, 0);
        g_assert_cmpint(p.mode, ==, RESTART_UNLESS_STOPPED);
        g_assert_cmpint(restart_policy_parse("on-failure", &p), ==, 0);
        g_assert_cmpint(p.mode, ==, RESTART_ON_FAILURE);
        g_assert_cmpuint(p.max_retries, ==, 0);
        g_assert_cmpint(restart_policy_parse("on-failure:3", &p), ==, 0);
        g_assert_cmpuint(p.max_retries, ==, 3);
        g_assert_cmpstr(restart_policy_format(&p, buf), ==, "on-failure:3");
        g_assert_cmpint(restart_policy_parse("on-failure:1000000", &p), ==, 0);

        const char *bad[] = { "On-failure",
                              "on-failure:",
                              "on-failure:0",
                              "on-failure:-1",
                              "on-failure:+3",
                              "on-failure:1000001",
                              "on-failure:99999999",
                              "on-failure3",
                              "always ",
                              "yes",
                              "on-failure:3x" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                g_assert_cmpint(restart_policy_parse(bad[i], &p), ==, -EINVAL);
}

#define CFG                                                                                                 \
        "\"image_config\":\"sha256:"                                                                        \
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\""

static int parse(const char *s, char **err) {
        _cleanup_(container_request_freep) ContainerRequest *r = NULL;

        return container_request_parse(s, strlen(s), &r, err);
}

static void test_request_fields(void) {
        _cleanup_(container_request_freep) ContainerRequest *r = NULL;
        const char *ok =
                "{\"name\":\"w\",\"owner\":1," CFG ",\"restart\":\"on-failure:2\",\"log_max_size\":65536}";
        char *err = NULL;

        g_assert_cmpint(container_request_parse(ok, strlen(ok), &r, &err), ==, 0);
        g_assert_cmpstr(r->restart, ==, "on-failure:2");
        g_assert_cmpuint(r->log_max_size, ==, 65536);

        g_assert_cmpint(parse("{\"name\":\"w\",\"owner\":1," CFG ",\"restart\":\"sometimes\"}", &err), ==,
                        -EINVAL);
        g_assert_nonnull(strstr(err, "restart"));
        g_clear_pointer(&err, free);
        g_assert_cmpint(parse("{\"name\":\"w\",\"owner\":1," CFG ",\"log_max_size\":100}", &err), ==,
                        -ERANGE);
        g_clear_pointer(&err, free);
        /* A restart runs config.json again; bind sources were fds of the first run. */
        g_assert_cmpint(parse("{\"name\":\"w\",\"owner\":1," CFG ",\"restart\":\"always\","
                              "\"mounts\":[{\"source_fd\":0,\"destination\":\"/d\",\"readonly\":true}]}",
                              &err),
                        ==, -EINVAL);
        g_clear_pointer(&err, free);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/restart/policies", test_policies);
        g_test_add_func("/restart/request-fields", test_request_fields);
        return g_test_run();
}
