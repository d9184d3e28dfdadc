/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "fs-in-root.h"
#include "fs-util.h"
#include "sysctl.h"

int sysctls_apply(const Spec *spec, BerthError *err) {
        for (size_t i = 0; i < spec->n_sysctls; i++) {
                const SpecSysctl *s = &spec->sysctls[i];
                _cleanup_close_ int fd = -EBADF;
                char path[512];
                struct statfs fs;
                int r;

                /* Checked again here: the child never writes a key the parent did not vet. */
                r = spec_sysctl_check(spec, s->key, s->value, err);
                if (r < 0)
                        return r;
                snprintf(path, sizeof(path), "/proc/sys/%s", s->key);
                for (char *c = path + strlen("/proc/sys/"); *c; c++)
                        if (*c == '.')
                                *c = '/';
                fd = openat2_fd(AT_FDCWD, path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                                RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
                if (fd < 0)
                        return berth_error_setm(err, -fd, "Cannot open sysctl '%s'", s->key);
                if (fstatfs(fd, &fs) < 0 || fs.f_type != PROC_SUPER_MAGIC)
                        return berth_error_set(err, EPERM, "sysctl '%s' is not on procfs, refusing", s->key);
                r = loop_write(fd, s->value, strlen(s->value));
                if (r < 0)
                        return berth_error_setm(err, -r, "Cannot set sysctl '%s' to '%s'", s->key, s->value);
        }
        return 0;
}
