/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Untrusted text (a registry's document or error, a bus caller's reference, a broker's message) ends up
 * in messages shown on terminals and in logs. One way to make it safe there: every byte that is not
 * printable ASCII becomes \xNN, so a hostile string can neither inject control sequences (move the
 * cursor, retitle the terminal, fake other output) nor hide behind look-alike UTF-8; and it is cut
 * short, so it cannot flood a log. */

typedef enum EscapeFlags {
        /* Also escape '\\' and '\'': for text set between '…' in a message, whose quotes the text must
         * not be able to close. */
        ESCAPE_QUOTED = 1 << 0,
} EscapeFlags;

/* A malloc'd copy of s, escaped as above; at most max bytes of s are kept (0: all of it), a cut is
 * marked "...". NULL s → "n/a". NULL only when out of memory. */
char *escape_untrusted(const char *s, size_t max, EscapeFlags flags);
