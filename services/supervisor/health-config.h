/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>
#include <stdint.h>

#include "oci-types.h"

/* A container's health check: the request's "health" member (the only reader of it, linked into the
 * broker with request.c) over the image config's Healthcheck, kept in <state dir>/health so that a
 * restarted supervisor goes on checking. Docker's defaults and meanings. */

#define HEALTH_INTERVAL_DEFAULT_USEC (30U * 1000000ULL)
#define HEALTH_TIMEOUT_DEFAULT_USEC (30U * 1000000ULL)
#define HEALTH_RETRIES_DEFAULT 3U
#define HEALTH_DURATION_MIN_USEC                                                                            \
        (100U * 1000ULL) /* checks closer than this would be a load, not a check                            \
                          */
#define HEALTH_DURATION_MAX_USEC (24ULL * 3600U * 1000000ULL)
#define HEALTH_RETRIES_MAX 1000U
#define HEALTH_STOP_TIMEOUT_USEC (10U * 1000000ULL) /* podman's default stop timeout */
#define HEALTH_FILE "health"
#define HEALTH_STATE_FILE "health-state"

typedef enum HealthOnFailure {
        HEALTH_ON_FAILURE_NONE,
        HEALTH_ON_FAILURE_KILL,
        HEALTH_ON_FAILURE_RESTART,
        HEALTH_ON_FAILURE_STOP, /* podman's: as a user's stop (SIGTERM, SIGKILL after
                                   HEALTH_STOP_TIMEOUT_USEC) */
} HealthOnFailure;

typedef struct HealthConfig {
        char **test; /* as the request or image said: ["CMD", …], ["CMD-SHELL", cmd], ["NONE"]; NULL = unset
                      */
        uint64_t interval_usec, timeout_usec, start_period_usec; /* 0 = unset (default) */
        uint32_t retries;                                        /* 0 = unset */
        HealthOnFailure on_failure;
} HealthConfig;

HealthConfig *health_config_free(HealthConfig *h);

/* The request's "health" object: {"test": [...], "interval_ms", "timeout_ms", "start_period_ms",
 * "retries", "on_failure": "none"|"kill"|"restart"|"stop"}; a JSON_FIELD_CUSTOM dispatcher into
 * HealthConfig*. */
int health_config_dispatch(JsonNode *node, void *target, void *userdata, char **ret_error);

/* The argv a check runs (NULL: no check), from test. */
char **health_test_argv(char *const *test);

/* Writes <state dir>/health from the request's and the image's settings (nothing when neither has a
 * test, or the test is ["NONE"]). */
int health_config_save(int state_dir_fd, const HealthConfig *request, const OciImageConfig *image);
/* Reads it back with every default applied; -ENOENT without a check. */
int health_config_load(int state_dir_fd, HealthConfig **ret);

const char *health_on_failure_to_string(HealthOnFailure f);
