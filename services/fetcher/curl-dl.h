/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* libcurl, loaded at the first request (lib/dlopen-util.h): a fetcher activated for OpenBlob, ListBlobs
 * or GetInfo never maps libcurl, its TLS backend and their dependencies (GnuTLS, Kerberos, LDAP, …).
 * Every file of the fetcher includes this instead of <curl/curl.h>.
 *
 * curl's compile-time type check of curl_easy_setopt() options (typecheck-gcc.h) is a macro over the
 * function's name and cannot wrap a pointer, so it is off in the service; the build compiles the same
 * files once more with CURL_DL_TYPECHECK_ONLY (direct calls, the type check on, never linked: see
 * meson.build), so a wrong option type still fails the build. */

#ifdef CURLINC_CURL_H
#error "curl-dl.h must be included before (instead of) <curl/curl.h>"
#endif
#ifndef CURL_DL_TYPECHECK_ONLY
#define CURL_DISABLE_TYPECHECK 1
#endif
#include <curl/curl.h>

/* Loads libcurl and resolves every function the fetcher uses; idempotent. < 0 when it cannot. */
int curl_dl_open(void);

#define CURL_DL_FUNCTIONS(X)                                                                                \
        X(curl_global_init)                                                                                 \
        X(curl_easy_init)                                                                                   \
        X(curl_easy_cleanup)                                                                                \
        X(curl_easy_reset)                                                                                  \
        X(curl_easy_setopt)                                                                                 \
        X(curl_easy_getinfo)                                                                                \
        X(curl_easy_strerror)                                                                               \
        X(curl_multi_init)                                                                                  \
        X(curl_multi_cleanup)                                                                               \
        X(curl_multi_setopt)                                                                                \
        X(curl_multi_add_handle)                                                                            \
        X(curl_multi_remove_handle)                                                                         \
        X(curl_multi_socket_action)                                                                         \
        X(curl_multi_info_read)                                                                             \
        X(curl_slist_append)                                                                                \
        X(curl_slist_free_all)

#define CURL_DL_DECLARE(f) extern typeof(f) *sym_##f;
CURL_DL_FUNCTIONS(CURL_DL_DECLARE)
#undef CURL_DL_DECLARE

#if !defined(CURL_DL_IMPLEMENTATION) && !defined(CURL_DL_TYPECHECK_ONLY)
/* curl.h's own three-argument guards for these four are replaced by the pointers. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#define curl_global_init sym_curl_global_init
#define curl_easy_init sym_curl_easy_init
#define curl_easy_cleanup sym_curl_easy_cleanup
#define curl_easy_reset sym_curl_easy_reset
#define curl_easy_setopt sym_curl_easy_setopt
#define curl_easy_getinfo sym_curl_easy_getinfo
#define curl_easy_strerror sym_curl_easy_strerror
#define curl_multi_init sym_curl_multi_init
#define curl_multi_cleanup sym_curl_multi_cleanup
#define curl_multi_setopt sym_curl_multi_setopt
#define curl_multi_add_handle sym_curl_multi_add_handle
#define curl_multi_remove_handle sym_curl_multi_remove_handle
#define curl_multi_socket_action sym_curl_multi_socket_action
#define curl_multi_info_read sym_curl_multi_info_read
#define curl_slist_append sym_curl_slist_append
#define curl_slist_free_all sym_curl_slist_free_all
#endif
