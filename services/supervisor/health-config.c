/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <unistd.h>

#include "fs-util.h"
#include "health-config.h"
#include "json-util.h"
#include "macro.h"

#define HEALTH_TEST_ARGS_MAX 256U
#define HEALTH_TEST_BYTES_MAX (64U * 1024U)
#define HEALTH_FILE_MAX (128U * 1024U)

HealthConfig *health_config_free(HealthConfig *h) {
        if (!h)
                return NULL;
        g_strfreev(h->test);
        return mfree(h);
}

const char *health_on_failure_to_string(HealthOnFailure f) {
        return f == HEALTH_ON_FAILURE_KILL      ? "kill"
               : f == HEALTH_ON_FAILURE_RESTART ? "restart"
               : f == HEALTH_ON_FAILURE_STOP    ? "stop"
                                                : "none";
}

static int test_check(char *const *test, char **ret_error) {
        size_t n = 0, bytes = 0;

        if (!test || !test[0])
                return json_set_error(ret_error, EINVAL, "field 'health.test' must not be empty");
        for (char *const *t = test; *t; t++) {
                n++;
                bytes += strlen(*t) + 1;
        }
        if (n > HEALTH_TEST_ARGS_MAX || bytes > HEALTH_TEST_BYTES_MAX)
                return json_set_error(ret_error, E2BIG, "field 'health.test' is too long");
        if (streq(test[0], "NONE"))
                return n == 1 ? 0
                              : json_set_error(ret_error, EINVAL, "field 'health.test': NONE takes nothing");
        if (streq(test[0], "CMD-SHELL"))
                return n == 2 && test[1][0]
                               ? 0
                               : json_set_error(ret_error, EINVAL,
                                                "field 'health.test': CMD-SHELL takes one command");
        if (streq(test[0], "CMD"))
                return n >= 2 && test[1][0] ? 0
                                            : json_set_error(ret_error, EINVAL,
                                                             "field 'health.test': CMD takes a command");
        return json_set_error(ret_error, EINVAL,
                              "field 'health.test' must start with CMD, CMD-SHELL or NONE");
}

char **health_test_argv(char *const *test) {
        if (!test || !test[0] || streq(test[0], "NONE"))
                return NULL;
        if (streq(test[0], "CMD-SHELL"))
                return test[1] ? g_strdupv((char *[]){ (char *) "/bin/sh", (char *) "-c", test[1], NULL })
                               : NULL;
        if (streq(test[0], "CMD") && test[1])
                return g_strdupv((char **) test + 1);
        return NULL;
}

typedef struct HealthJson {
        char **test;
        uint64_t interval_ms, timeout_ms, start_period_ms, retries;
        char *on_failure;
} HealthJson;

static int duration_ms(uint64_t ms, const char *field, uint64_t *ret, char **ret_error) {
        if (ms == 0) {
                *ret = 0;
                return 0;
        }
        if (ms > HEALTH_DURATION_MAX_USEC / 1000U || ms * 1000U < HEALTH_DURATION_MIN_USEC)
                return json_set_error(ret_error, ERANGE, "field 'health.%s' must be 0 or 100 ms..24 h",
                                      field);
        *ret = ms * 1000U;
        return 0;
}

int health_config_dispatch(JsonNode *node, void *target, void *userdata, char **ret_error) {
        static const char *const known[] = { "test",    "interval_ms", "timeout_ms", "start_period_ms",
                                             "retries", "on_failure",  NULL };
        static const JsonField table[] = {
                { "test", JSON_FIELD_STRV, offsetof(HealthJson, test), 0 },
                { "interval_ms", JSON_FIELD_UINT64, offsetof(HealthJson, interval_ms), 0 },
                { "timeout_ms", JSON_FIELD_UINT64, offsetof(HealthJson, timeout_ms), 0 },
                { "start_period_ms", JSON_FIELD_UINT64, offsetof(HealthJson, start_period_ms), 0 },
                { "retries", JSON_FIELD_UINT64, offsetof(HealthJson, retries), 0 },
                { "on_failure", JSON_FIELD_STRING, offsetof(HealthJson, on_failure), 0 },
                {},
        };
        HealthConfig **out = target;
        g_autoptr(GList) members = NULL;
        HealthJson j = {};
        HealthConfig *h = NULL;
        int r;

        if (JSON_NODE_HOLDS_NULL(node))
                return 0;
        if (!JSON_NODE_HOLDS_OBJECT(node))
                return json_set_error(ret_error, EINVAL, "field 'health' must be an object");
        members = json_object_get_members(json_node_get_object(node));
        for (GList *l = members; l; l = l->next)
                if (!g_strv_contains(known, l->data))
                        return json_set_error(ret_error, EINVAL, "unknown field 'health.%s'",
                                              (char *) l->data);
        r = json_dispatch(json_node_get_object(node), table, &j, NULL, ret_error);
        h = calloc(1, sizeof(*h));
        if (r >= 0 && !h)
                r = -ENOMEM;
        if (r >= 0 && j.test && (r = test_check(j.test, ret_error)) >= 0)
                h->test = g_steal_pointer(&j.test);
        if (r >= 0)
                r = duration_ms(j.interval_ms, "interval_ms", &h->interval_usec, ret_error);
        if (r >= 0)
                r = duration_ms(j.timeout_ms, "timeout_ms", &h->timeout_usec, ret_error);
        if (r >= 0 && j.start_period_ms > 0)
                r = duration_ms(j.start_period_ms, "start_period_ms", &h->start_period_usec, ret_error);
        if (r >= 0 && j.retries > HEALTH_RETRIES_MAX)
                r = json_set_error(ret_error, ERANGE, "field 'health.retries' must be at most %u",
                                   HEALTH_RETRIES_MAX);
        if (r >= 0)
                h->retries = (uint32_t) j.retries;
        if (r >= 0 && j.on_failure) {
                if (streq(j.on_failure, "none"))
                        h->on_failure = HEALTH_ON_FAILURE_NONE;
                else if (streq(j.on_failure, "kill"))
                        h->on_failure = HEALTH_ON_FAILURE_KILL;
                else if (streq(j.on_failure, "restart"))
                        h->on_failure = HEALTH_ON_FAILURE_RESTART;
                else if (streq(j.on_failure, "stop"))
                        h->on_failure = HEALTH_ON_FAILURE_STOP;
                else
                        r = json_set_error(ret_error, EINVAL,
                                           "field 'health.on_failure' must be none, kill, restart or stop");
        }
        g_strfreev(j.test);
        free(j.on_failure);
        if (r < 0) {
                health_config_free(h);
                return r;
        }
        health_config_free(*out);
        *out = h;
        return 0;
}

/* An image's duration in ns: out of range counts as unset (an image cannot make checks hammer the host). */
static uint64_t image_duration(int64_t ns) {
        uint64_t us = ns > 0 ? (uint64_t) ns / 1000U : 0;
        return us >= HEALTH_DURATION_MIN_USEC && us <= HEALTH_DURATION_MAX_USEC ? us : 0;
}

int health_config_save(int state_dir_fd, const HealthConfig *req, const OciImageConfig *image) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) root = NULL;
        _cleanup_free_ char *s = NULL;
        char *const *test = req && req->test ? req->test : image ? image->health_test : NULL;
        uint64_t interval = req && req->interval_usec ? req->interval_usec
                            : image                   ? image_duration(image->health_interval)
                                                      : 0;
        uint64_t timeout = req && req->timeout_usec ? req->timeout_usec
                           : image                  ? image_duration(image->health_timeout)
                                                    : 0;
        uint64_t start = req && req->start_period_usec ? req->start_period_usec
                         : image                       ? image_duration(image->health_start_period)
                                                       : 0;
        uint64_t retries =
                req && req->retries ? req->retries
                : image && image->health_retries > 0 && image->health_retries <= HEALTH_RETRIES_MAX
                        ? (uint64_t) image->health_retries
                        : 0;
        g_auto(GStrv) argv = NULL;

        /* The image's test is checked as the request's is: a bad one means no check. */
        if (!test || test_check(test, NULL) < 0 || !(argv = health_test_argv(test)))
                return 0;
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "test");
        json_builder_begin_array(b);
        for (char *const *t = test; *t; t++)
                json_builder_add_string_value(b, *t);
        json_builder_end_array(b);
        json_builder_set_member_name(b, "interval_ms");
        json_builder_add_int_value(b, (gint64) ((interval ?: HEALTH_INTERVAL_DEFAULT_USEC) / 1000U));
        json_builder_set_member_name(b, "timeout_ms");
        json_builder_add_int_value(b, (gint64) ((timeout ?: HEALTH_TIMEOUT_DEFAULT_USEC) / 1000U));
        json_builder_set_member_name(b, "start_period_ms");
        json_builder_add_int_value(b, (gint64) (start / 1000U));
        json_builder_set_member_name(b, "retries");
        json_builder_add_int_value(b, (gint64) (retries ?: HEALTH_RETRIES_DEFAULT));
        json_builder_set_member_name(b, "on_failure");
        json_builder_add_string_value(
                b, health_on_failure_to_string(req ? req->on_failure : HEALTH_ON_FAILURE_NONE));
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        s = json_to_string_compact(root);
        if (!s)
                return -ENOMEM;
        return write_file_atomic_at(state_dir_fd, HEALTH_FILE, s, strlen(s), 0600);
}

int health_config_load(int state_dir_fd, HealthConfig **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *data = NULL, *msg = NULL;
        g_autoptr(JsonNode) root = NULL;
        HealthConfig *h = NULL;
        size_t size;
        int r;

        fd = openat(state_dir_fd, HEALTH_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = read_regular_file_fd(fd, HEALTH_FILE_MAX, &data, &size);
        if (r >= 0)
                r = json_parse_bounded(data, size, HEALTH_FILE_MAX, &root, &msg);
        if (r >= 0)
                r = health_config_dispatch(root, &h, NULL, &msg);
        if (r < 0)
                return r;
        g_auto(GStrv) argv = h ? health_test_argv(h->test) : NULL;
        if (!argv) {
                health_config_free(h);
                return -ENOENT;
        }
        if (!h->interval_usec)
                h->interval_usec = HEALTH_INTERVAL_DEFAULT_USEC;
        if (!h->timeout_usec)
                h->timeout_usec = HEALTH_TIMEOUT_DEFAULT_USEC;
        if (!h->retries)
                h->retries = HEALTH_RETRIES_DEFAULT;
        *ret = h;
        return 0;
}
