/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log-record.h"

static int digits(const char *s, int n, int *ret) {
        int v = 0;

        for (int i = 0; i < n; i++) {
                if (!isdigit((unsigned char) s[i]))
                        return -EINVAL;
                v = v * 10 + (s[i] - '0');
        }
        *ret = v;
        return 0;
}

int parse_rfc3339(const char *s, size_t len, uint64_t *ret) {
        struct tm tm = {};
        int y, mo, d, h, mi, sec;
        uint64_t frac = 0, scale = 1000000;
        int64_t offset = 0;
        size_t i = 19;
        time_t t;

        if (len < 20 || digits(s, 4, &y) < 0 || s[4] != '-' || digits(s + 5, 2, &mo) < 0 || s[7] != '-' ||
            digits(s + 8, 2, &d) < 0 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
            digits(s + 11, 2, &h) < 0 || s[13] != ':' || digits(s + 14, 2, &mi) < 0 || s[16] != ':' ||
            digits(s + 17, 2, &sec) < 0)
                return -EINVAL;
        if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970)
                return -EINVAL;
        if (i < len && s[i] == '.') {
                i++;
                if (i >= len || !isdigit((unsigned char) s[i]))
                        return -EINVAL;
                for (; i < len && isdigit((unsigned char) s[i]); i++)
                        if (scale > 1) {
                                scale /= 10;
                                frac += (uint64_t) (s[i] - '0') * scale;
                        }
        }
        if (i < len && (s[i] == 'Z' || s[i] == 'z') && i + 1 == len)
                ;
        else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
                int oh, om;
                if (digits(s + i + 1, 2, &oh) < 0 || digits(s + i + 4, 2, &om) < 0 || oh > 23 || om > 59)
                        return -EINVAL;
                offset = (int64_t) (oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
        } else
                return -EINVAL;
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        t = timegm(&tm);
        if (t == (time_t) -1 || (int64_t) t - offset < 0)
                return -EINVAL;
        *ret = (uint64_t) ((int64_t) t - offset) * 1000000U + frac;
        return 0;
}

int log_record_parse(const char *line, LogRecord *ret) {
        const char *sp = strchr(line, ' ');
        LogRecord r = {};

        if (!sp || parse_rfc3339(line, (size_t) (sp - line), &r.time_usec) < 0)
                return -EBADMSG;
        r.time_len = (size_t) (sp - line);
        sp++;
        if (strncmp(sp, "stdout ", 7) == 0)
                r.stderr_stream = false;
        else if (strncmp(sp, "stderr ", 7) == 0)
                r.stderr_stream = true;
        else
                return -EBADMSG;
        sp += 7;
        if ((sp[0] != 'F' && sp[0] != 'P') || sp[1] != ' ')
                return -EBADMSG;
        r.partial = sp[0] == 'P';
        r.text = sp + 2;
        *ret = r;
        return 0;
}

int log_parse_since(const char *s, uint64_t *ret_usec) {
        struct timespec ts;
        uint64_t now, total = 0;
        const char *p = s;

        if (!s || !*s)
                return -EINVAL;
        if (parse_rfc3339(s, strlen(s), ret_usec) >= 0)
                return 0;
        clock_gettime(CLOCK_REALTIME, &ts);
        now = (uint64_t) ts.tv_sec * 1000000U + (uint64_t) ts.tv_nsec / 1000U;
        if (strspn(s, "0123456789") == strlen(s)) {
                /* seconds since the epoch */
                unsigned long long v = strtoull(s, NULL, 10);
                if (v > UINT64_MAX / 1000000U)
                        return -ERANGE;
                *ret_usec = (uint64_t) v * 1000000U;
                return 0;
        }
        while (*p) {
                char *end;
                unsigned long long v;
                uint64_t unit;

                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                errno = 0;
                v = strtoull(p, &end, 10);
                if (errno || end == p)
                        return -EINVAL;
                if (strncmp(end, "ms", 2) == 0) {
                        unit = 1000U;
                        end += 2;
                } else {
                        switch (*end) {
                        case 's':
                                unit = 1000000U;
                                break;
                        case 'm':
                                unit = 60U * 1000000U;
                                break;
                        case 'h':
                                unit = 3600ULL * 1000000U;
                                break;
                        case 'd':
                                unit = 86400ULL * 1000000U;
                                break;
                        default:
                                return -EINVAL;
                        }
                        end++;
                }
                if (v > (UINT64_MAX - total) / unit)
                        return -ERANGE;
                total += (uint64_t) v * unit;
                p = end;
        }
        *ret_usec = total > now ? 0 : now - total;
        return 0;
}

void format_rfc3339(uint64_t usec, char *buf, size_t size) {
        time_t t = (time_t) (usec / 1000000U);
        struct tm tm;
        size_t n;

        gmtime_r(&t, &tm);
        n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, size - n, ".%06uZ", (unsigned) (usec % 1000000U));
}
