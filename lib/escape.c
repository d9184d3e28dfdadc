/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"

char *escape_untrusted(const char *s, size_t max, EscapeFlags flags) {
        static const char hex[] = "0123456789abcdef";
        size_t n, k;
        char *buf, *p;

        if (!s)
                s = "n/a";
        n = strlen(s);
        k = max > 0 && n > max ? max : n;
        /* Each byte takes at most 4 ("\xNN"), then "..." and the NUL. */
        buf = malloc(k * 4 + 4);
        if (!buf)
                return NULL;

        p = buf;
        for (size_t i = 0; i < k; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c < 0x20 || c >= 0x7f || ((flags & ESCAPE_QUOTED) && (c == '\\' || c == '\''))) {
                        *p++ = '\\';
                        *p++ = 'x';
                        *p++ = hex[c >> 4];
                        *p++ = hex[c & 0xf];
                } else
                        *p++ = (char) c;
        }
        if (k < n)
                p = stpcpy(p, "...");
        *p = '\0';
        return buf;
}
