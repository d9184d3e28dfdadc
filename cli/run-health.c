/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "run-health.h"

/* "30s", "1m30s", "500ms", "2h"; a bare number is seconds. */
static int parse_duration_ms(const char *s, uint64_t *ret) {
        uint64_t total = 0;

        if (!*s)
                return -EINVAL;
        while (*s) {
                char *end;
                unsigned long long v;
                uint64_t mult;

                errno = 0;
                v = strtoull(s, &end, 10);
                if (errno || end == s || v > 24ULL * 3600 * 1000)
                        return -EINVAL;
                if (g_str_has_prefix(end, "ms")) {
                        mult = 1;
                        end += 2;
                } else if (*end == 's' || *end == '\0') {
                        mult = 1000;
                        end += *end ? 1 : 0;
                } else if (*end == 'm') {
                        mult = 60 * 1000;
                        end++;
                } else if (*end == 'h') {
                        mult = 3600 * 1000;
                        end++;
                } else
                        return -EINVAL;
                total += v * mult;
                if (total > 24ULL * 3600 * 1000)
                        return -ERANGE;
                s = end;
        }
        *ret = total;
        return 0;
}

int run_health_option(RunHealth *h, int c, const char *arg) {
        const char *what = NULL;
        char *end;
        int r = 0;

        switch (c) {
        case RUN_ARG_HEALTH_CMD:
                h->cmd = arg;
                break;
        case RUN_ARG_NO_HEALTHCHECK:
                h->none = true;
                break;
        case RUN_ARG_HEALTH_INTERVAL:
                r = parse_duration_ms(arg, &h->interval_ms);
                what = "--health-interval";
                break;
        case RUN_ARG_HEALTH_TIMEOUT:
                r = parse_duration_ms(arg, &h->timeout_ms);
                what = "--health-timeout";
                break;
        case RUN_ARG_HEALTH_START_PERIOD:
                r = parse_duration_ms(arg, &h->start_period_ms);
                what = "--health-start-period";
                break;
        case RUN_ARG_HEALTH_RETRIES:
                errno = 0;
                h->retries = strtoull(arg, &end, 10);
                r = errno || end == arg || *end || arg[0] == '-' ? -EINVAL : 0;
                what = "--health-retries";
                break;
        case RUN_ARG_HEALTH_ON_FAILURE:
                if (!streq(arg, "none") && !streq(arg, "kill") && !streq(arg, "restart") &&
                    !streq(arg, "stop")) {
                        r = -EINVAL;
                        what = "--health-on-failure (none, kill, restart or stop)";
                }
                h->on_failure = arg;
                break;
        default:
                return 0;
        }
        if (r < 0) {
                fprintf(stderr, "berthctl: invalid %s '%s'\n", what, arg);
                return r;
        }
        h->set = true;
        return 1;
}

void run_health_to_json(const RunHealth *h, JsonBuilder *b) {
        if (!h->set)
                return;
        json_builder_set_member_name(b, "health");
        json_builder_begin_object(b);
        if (h->none || h->cmd) {
                json_builder_set_member_name(b, "test");
                json_builder_begin_array(b);
                json_builder_add_string_value(b, h->none ? "NONE" : "CMD-SHELL");
                if (!h->none)
                        json_builder_add_string_value(b, h->cmd);
                json_builder_end_array(b);
        }
        const struct {
                const char *name;
                uint64_t v;
        } nums[] = { { "interval_ms", h->interval_ms },
                     { "timeout_ms", h->timeout_ms },
                     { "start_period_ms", h->start_period_ms },
                     { "retries", h->retries } };
        for (size_t i = 0; i < ELEMENTSOF(nums); i++)
                if (nums[i].v > 0) {
                        json_builder_set_member_name(b, nums[i].name);
                        json_builder_add_int_value(b, (gint64) nums[i].v);
                }
        if (h->on_failure) {
                json_builder_set_member_name(b, "on_failure");
                json_builder_add_string_value(b, h->on_failure);
        }
        json_builder_end_object(b);
}
