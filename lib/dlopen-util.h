/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Libraries a service needs only for some of its work (libcurl and its TLS backend in the fetcher,
 * libarchive in its archive children) are loaded with dlopen() when that work starts, so the long-lived
 * process does not carry them while it idles (systemd does the same with its dlopen-*.c shims).
 *
 * A shim header declares `extern typeof(f) *sym_f;` for each function and `#define f sym_f` for the
 * code that calls it; its .c file defines the pointers and calls dlopen_symbols() once. */

#define DLSYM_ARG(name) (void **) &sym_##name, #name

/* dlopen(soname) (once: *handle keeps it; later calls return 0 at once) and resolve each (void **ptr,
 * const char *name) pair, terminated by NULL. On failure nothing is kept, every pointer is NULL, and
 * *ret_error (may be NULL) says what was missing (a static or dlerror() string, do not free). */
int dlopen_symbols(void **handle, const char *soname, const char **ret_error, ...);
