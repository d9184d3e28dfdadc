/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* --restart no|on-failure[:N]|always|unless-stopped, as docker spells it. Parsed by the request parser
 * (the broker validates with the same code) and by the supervisor's restart record. */

typedef enum RestartMode {
        RESTART_NO,
        RESTART_ON_FAILURE,
        RESTART_ALWAYS,
        RESTART_UNLESS_STOPPED,
} RestartMode;

#define RESTART_RETRIES_MAX 1000000U
#define RESTART_POLICY_STRING_MAX 32U

typedef struct RestartPolicy {
        RestartMode mode;
        uint32_t max_retries; /* on-failure:N; 0 = unlimited */
} RestartPolicy;

/* 0, or -EINVAL for anything but the four spellings (N: 1..RESTART_RETRIES_MAX). NULL or "" is "no". */
int restart_policy_parse(const char *s, RestartPolicy *ret);
/* "no", "on-failure", "on-failure:N", "always", "unless-stopped" into buf. */
const char *restart_policy_format(const RestartPolicy *p, char buf[static RESTART_POLICY_STRING_MAX]);
