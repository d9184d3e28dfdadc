/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* A stand-in for libFuzzer's driver, so every fuzz target also builds with gcc as an ordinary program
 * that replays a corpus: each argument is a file, or a directory whose regular files are all fed to
 * LLVMFuzzerTestOneInput() once. A crash or sanitizer report fails the run like any other test.
 *
 * For real fuzzing, leave this file out and let libFuzzer drive the target, e.g.:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -std=gnu11 -iquote lib -o fuzz-manifest \
 *         tests/fuzz/fuzz-manifest.c lib/digest.c lib/json-util.c lib/oci-ref.c lib/oci-types.c \
 *         $(pkg-config --cflags --libs json-glib-1.0 libcrypto)
 *   ./fuzz-manifest -max_total_time=300 corpus-copy/ tests/fuzz/corpus/fuzz-manifest/
 * The service-side targets add their sources and include folders (-I build for config.h):
 *   fuzz-auth-challenge: services/fetcher/auth.c; -iquote services/fetcher
 *   fuzz-docker-manifest: services/fetcher/{archive-import,archive-job,content-store}.c, libarchive
 *   fuzz-tar-extract: services/unpacker/{extract,fs-at,layer-stream,whiteout,implied-dirs,sandbox}.c,
 *     libarchive, libseccomp, libcap; -iquote services/unpacker; it writes files, so run it as an
 *     unprivileged user: runuser -u nobody -- unshare -r ./fuzz-tar-extract … */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Generous but finite, so a stray huge file cannot eat the machine. */
#define INPUT_SIZE_MAX (64U * 1024U * 1024U)

static int run_file(int dir_fd, const char *path) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t done = 0;

        fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return 0;
        if ((uint64_t) st.st_size > INPUT_SIZE_MAX)
                return -EFBIG;

        /* Exactly the file's size, so ASan catches reads one past the end. */
        buf = malloc((size_t) st.st_size ?: 1);
        if (!buf)
                return -ENOMEM;

        while (done < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + done, (size_t) st.st_size - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                done += (size_t) n;
        }

        (void) LLVMFuzzerTestOneInput(buf, done);
        return 1;
}

static int run_path(const char *path, unsigned *count) {
        _cleanup_close_ int dir_fd = -EBADF;
        DIR *d;
        struct dirent *de;
        int r;

        dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0) {
                if (errno != ENOTDIR)
                        return negative_errno();
                r = run_file(AT_FDCWD, path);
                if (r > 0)
                        (*count)++;
                return r < 0 ? r : 0;
        }

        d = fdopendir(dir_fd);
        if (!d)
                return negative_errno();
        TAKE_FD(dir_fd); /* now owned by d */

        r = 0;
        while ((de = readdir(d))) {
                int k;

                if (de->d_name[0] == '.')
                        continue;
                k = run_file(dirfd(d), de->d_name);
                if (k < 0) {
                        fprintf(stderr, "%s/%s: %s\n", path, de->d_name, strerror(-k));
                        r = k;
                } else if (k > 0)
                        (*count)++;
        }

        closedir(d);
        return r;
}

int main(int argc, char *argv[]) {
        unsigned count = 0;
        int r = 0;

        if (argc < 2) {
                fprintf(stderr, "Usage: %s FILE|DIRECTORY...\n", argv[0]);
                return EXIT_FAILURE;
        }

        for (int i = 1; i < argc; i++) {
                int k = run_path(argv[i], &count);
                if (k < 0) {
                        fprintf(stderr, "%s: %s\n", argv[i], strerror(-k));
                        r = k;
                }
        }

        printf("%u inputs executed\n", count);
        /* A replay of an empty (or misnamed, or unreadable) corpus would test nothing: say so, loudly. */
        if (r >= 0 && count == 0) {
                fprintf(stderr, "no inputs found: a seed corpus must hold at least one file\n");
                return EXIT_FAILURE;
        }
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
