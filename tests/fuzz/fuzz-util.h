/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Helpers the file-writing fuzz targets share: a scratch directory for the process, removed at exit. */

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fuzz_remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) ftw;
        if (flag == FTW_DP || flag == FTW_D)
                (void) rmdir(path);
        else
                (void) unlink(path);
        return 0;
}

/* rm -rf, without following symlinks (an extracted tree is hostile), nor crossing mounts. */
static inline void fuzz_remove_tree(const char *path) {
        (void) nftw(path, fuzz_remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static char fuzz_scratch_path[64];

static void fuzz_scratch_cleanup(void) {
        if (fuzz_scratch_path[0])
                fuzz_remove_tree(fuzz_scratch_path);
}

/* A fresh private directory under $TMPDIR (or /tmp) for this process; aborts when none can be made. */
static inline const char *fuzz_scratch_dir(void) {
        const char *tmp;

        if (fuzz_scratch_path[0])
                return fuzz_scratch_path;
        tmp = getenv("TMPDIR") ?: "/tmp";
        if (snprintf(fuzz_scratch_path, sizeof(fuzz_scratch_path), "%s/berth-fuzz-XXXXXX", tmp) >=
                    (int) sizeof(fuzz_scratch_path) ||
            !mkdtemp(fuzz_scratch_path))
                abort();
        atexit(fuzz_scratch_cleanup);
        return fuzz_scratch_path;
}
