/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "restart-parse.h"

int restart_policy_parse(const char *s, RestartPolicy *ret) {
        RestartPolicy p = { .mode = RESTART_NO };

        if (!s || !*s || strcmp(s, "no") == 0)
                ;
        else if (strcmp(s, "always") == 0)
                p.mode = RESTART_ALWAYS;
        else if (strcmp(s, "unless-stopped") == 0)
                p.mode = RESTART_UNLESS_STOPPED;
        else if (strncmp(s, "on-failure", 10) == 0 && (s[10] == 0 || s[10] == ':')) {
                p.mode = RESTART_ON_FAILURE;
                if (s[10] == ':') {
                        const char *d = s + 11;
                        uint64_t v = 0;

                        /* Strict: digits only, no sign, no leading zero games, bounded. */
                        if (!*d || strlen(d) > 7)
                                return -EINVAL;
                        for (; *d; d++) {
                                if (*d < '0' || *d > '9')
                                        return -EINVAL;
                                v = v * 10 + (uint64_t) (*d - '0');
                        }
                        if (v == 0 || v > RESTART_RETRIES_MAX)
                                return -EINVAL;
                        p.max_retries = (uint32_t) v;
                }
        } else
                return -EINVAL;
        *ret = p;
        return 0;
}

const char *restart_policy_format(const RestartPolicy *p, char buf[static RESTART_POLICY_STRING_MAX]) {
        switch (p->mode) {
        case RESTART_ON_FAILURE:
                if (p->max_retries > 0)
                        snprintf(buf, RESTART_POLICY_STRING_MAX, "on-failure:%u", p->max_retries);
                else
                        snprintf(buf, RESTART_POLICY_STRING_MAX, "on-failure");
                break;
        case RESTART_ALWAYS:
                snprintf(buf, RESTART_POLICY_STRING_MAX, "always");
                break;
        case RESTART_UNLESS_STOPPED:
                snprintf(buf, RESTART_POLICY_STRING_MAX, "unless-stopped");
                break;
        default:
                snprintf(buf, RESTART_POLICY_STRING_MAX, "no");
        }
        return buf;
}
