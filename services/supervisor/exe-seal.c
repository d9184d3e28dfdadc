/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exe-seal.h"
#include "macro.h"

#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

#define REQUIRED_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

extern char **environ;

bool exe_is_sealed(void) {
        _cleanup_close_ int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        int seals = fcntl(fd, F_GET_SEALS);
        return seals >= 0 && (seals & REQUIRED_SEALS) == REQUIRED_SEALS;
}

int exe_seal_reexec(char **argv) {
        _cleanup_close_ int src = -EBADF, mfd = -EBADF;
        struct stat st;
        off_t off = 0;

        if (exe_is_sealed())
                return 0;

        src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        if (src < 0)
                return negative_errno();
        if (fstat(src, &st) < 0)
                return negative_errno();
        mfd = memfd_create("berth-sealed-exe", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (mfd < 0)
                return negative_errno();
        while (off < st.st_size) {
                ssize_t n = sendfile(mfd, src, &off, (size_t) (st.st_size - off));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        return -EIO;
        }
        /* F_SEAL_EXEC (Linux 6.3) also freezes the mode bits; older kernels refuse unknown seals. */
        if (fcntl(mfd, F_ADD_SEALS, REQUIRED_SEALS | F_SEAL_EXEC) < 0 &&
            fcntl(mfd, F_ADD_SEALS, REQUIRED_SEALS) < 0)
                return negative_errno();
        fexecve(mfd, argv, environ);
        return negative_errno();
}
