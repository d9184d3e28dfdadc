/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)
#define _noreturn_ __attribute__((noreturn))
#define _public_ __attribute__((visibility("default")))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* snprintf() into a char array; true when the result fit (never use a cut path). */
#define snprintf_ok(buf, ...) ((size_t) snprintf((buf), sizeof(buf), __VA_ARGS__) < sizeof(buf))

/* Ownership transfer: return the value and leave the variable empty, so its cleanup is a no-op. */
#define TAKE_GENERIC(var, type, nullvalue)                                                                  \
        ({                                                                                                  \
                type *_pvar_ = &(var);                                                                      \
                type _var_ = *_pvar_;                                                                       \
                type _nullvalue_ = nullvalue;                                                               \
                *_pvar_ = _nullvalue_;                                                                      \
                _var_;                                                                                      \
        })
#define TAKE_PTR(p) TAKE_GENERIC((p), typeof(p), NULL)
#define TAKE_FD(fd) TAKE_GENERIC((fd), int, -EBADF)

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}
static inline void closep(int *fd) {
        *fd = safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                             \
        static inline void func##p(type *p) {                                                               \
                if (*p)                                                                                     \
                        func(*p);                                                                           \
        }

/* Directory streams and stdio files opened in a scope are closed when it ends. */
static inline void closedirp(DIR **d) {
        if (*d)
                (void) closedir(*d);
}
#define _cleanup_closedir_ _cleanup_(closedirp)
static inline void fclosep(FILE **f) {
        if (*f)
                (void) fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* A NULL-terminated array of malloc'ed strings (also what g_strdupv/g_strsplit return: GLib's allocator
 * is malloc). Accepts NULL; returns NULL so that `l = strv_free(l);` leaves nothing dangling. */
static inline char **strv_free(char **l) {
        for (char **i = l; i && *i; i++)
                free(*i);
        free(l);
        return NULL;
}
static inline void strv_freep(char ***l) {
        *l = strv_free(*l);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

/* Turn a libc style "-1 + errno" result into -errno. */
#define RET_NERRNO(expr)                                                                                    \
        ({                                                                                                  \
                int _r_ = (expr);                                                                           \
                _r_ < 0 ? -errno : _r_;                                                                     \
        })

/* asprintf()/vasprintf() that leave *ret NULL when they fail: glibc leaves it undefined then, and a
 * _cleanup_free_ target (or a struct member freed later) must never be freed as garbage. Return what
 * asprintf() returns. Need _GNU_SOURCE. */
#define asprintf_safe(ret, ...)                                                                             \
        ({                                                                                                  \
                char **_p_ = (ret);                                                                         \
                int _k_ = asprintf(_p_, __VA_ARGS__);                                                       \
                if (_k_ < 0)                                                                                \
                        *_p_ = NULL;                                                                        \
                _k_;                                                                                        \
        })
#define vasprintf_safe(ret, format, ap)                                                                     \
        ({                                                                                                  \
                char **_p_ = (ret);                                                                         \
                int _k_ = vasprintf(_p_, format, ap);                                                       \
                if (_k_ < 0)                                                                                \
                        *_p_ = NULL;                                                                        \
                _k_;                                                                                        \
        })

/* The printf-style arguments of the calling variadic function as a new string (format: its last named
 * parameter), or NULL when out of memory. Needs _GNU_SOURCE (vasprintf). */
#define format_varargs(format)                                                                              \
        ({                                                                                                  \
                char *_s_ = NULL;                                                                           \
                va_list _ap_;                                                                               \
                va_start(_ap_, format);                                                                     \
                if (vasprintf(&_s_, format, _ap_) < 0)                                                      \
                        _s_ = NULL;                                                                         \
                va_end(_ap_);                                                                               \
                _s_;                                                                                        \
        })

static inline int negative_errno(void) {
        /* errno is never 0 after a failing call; guard anyway so we never return "success". */
        return errno > 0 ? -errno : -EIO;
}

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
#define streq(a, b) (strcmp((a), (b)) == 0)
/* The rest of s after prefix, or NULL when s does not start with it. */
static inline const char *startswith(const char *s, const char *prefix) {
        size_t n = strlen(prefix);

        return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}
#define isempty(s) (!(s) || !*(s))

static inline const char *strna(const char *s) {
        return s ?: "n/a";
}

#define STRV_FOREACH(s, l) for (char **s = (l); s && *s; s++)
