/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stdint.h>

/* run/create's --health-* options (docker's), as the options JSON's "health" member. */
typedef struct RunHealth {
        const char *cmd; /* --health-cmd: run with /bin/sh -c */
        bool none;       /* --no-healthcheck: not even the image's */
        uint64_t interval_ms, timeout_ms, start_period_ms, retries;
        const char *on_failure;
        bool set;
} RunHealth;

enum {
        RUN_ARG_HEALTH_CMD = 0x200,
        RUN_ARG_HEALTH_INTERVAL,
        RUN_ARG_HEALTH_TIMEOUT,
        RUN_ARG_HEALTH_START_PERIOD,
        RUN_ARG_HEALTH_RETRIES,
        RUN_ARG_HEALTH_ON_FAILURE,
        RUN_ARG_NO_HEALTHCHECK,
};

#define RUN_HEALTH_OPTIONS                                                                                  \
        { "health-cmd", required_argument, NULL, RUN_ARG_HEALTH_CMD },                                      \
                { "health-interval", required_argument, NULL, RUN_ARG_HEALTH_INTERVAL },                    \
                { "health-timeout", required_argument, NULL, RUN_ARG_HEALTH_TIMEOUT },                      \
                { "health-start-period", required_argument, NULL, RUN_ARG_HEALTH_START_PERIOD },            \
                { "health-retries", required_argument, NULL, RUN_ARG_HEALTH_RETRIES },                      \
                { "health-on-failure", required_argument, NULL, RUN_ARG_HEALTH_ON_FAILURE }, {              \
                "no-healthcheck", no_argument, NULL, RUN_ARG_NO_HEALTHCHECK                                 \
        }

/* 1 when c was one of the options above (handled), 0 when not, -EINVAL for a bad value (reported). */
int run_health_option(RunHealth *h, int c, const char *arg);
void run_health_to_json(const RunHealth *h, JsonBuilder *b);
