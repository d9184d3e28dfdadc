/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>

#include "dlopen-util.h"

static void reset_symbols(va_list ap) {
        void **ptr;

        while ((ptr = va_arg(ap, void **))) {
                (void) va_arg(ap, const char *);
                *ptr = NULL;
        }
}

int dlopen_symbols(void **handle, const char *soname, const char **ret_error, ...) {
        void *dl, **ptr;
        va_list ap;

        if (*handle)
                return 0;

        /* RTLD_NOW: every symbol is resolved here, not at a first call deep inside a job. */
        dl = dlopen(soname, RTLD_NOW | RTLD_NODELETE);
        if (!dl) {
                if (ret_error)
                        *ret_error = dlerror();
                return -EOPNOTSUPP;
        }

        va_start(ap, ret_error);
        while ((ptr = va_arg(ap, void **))) {
                const char *name = va_arg(ap, const char *);

                *ptr = dlsym(dl, name);
                if (!*ptr) {
                        va_list again;

                        if (ret_error)
                                *ret_error = dlerror();
                        va_end(ap);
                        va_start(again, ret_error);
                        reset_symbols(again);
                        va_end(again);
                        (void) dlclose(dl);
                        return -EOPNOTSUPP;
                }
        }
        va_end(ap);
        *handle = dl;
        return 0;
}
