/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdlib.h>
#include <string.h>

#include "macro.h"

/* Secrets (registry passwords, tokens, Authorization headers, base64 credentials, the credentials file)
 * are wiped before their memory goes back to the allocator, so that a later heap disclosure, a core
 * dump or a swapped-out page does not carry them. explicit_bzero() is not optimised away as a memset
 * before free() may be. GLib's allocator is malloc() (GLib ≥ 2.46), so g_strdup()ed secrets may be
 * freed here too. */

static inline void erase_buffer(void *p, size_t n) {
        if (p && n > 0)
                explicit_bzero(p, n);
}

static inline void *erase_and_free_buffer(void *p, size_t n) {
        erase_buffer(p, n);
        free(p);
        return NULL;
}

static inline char *erase_and_free(char *s) {
        return s ? erase_and_free_buffer(s, strlen(s)) : NULL;
}

static inline void erase_and_freep(char **s) {
        erase_and_free(*s);
}

/* char *: wiped up to its NUL and freed when it goes out of scope. */
#define _cleanup_erase_ _cleanup_(erase_and_freep)
