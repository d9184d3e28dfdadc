/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Path resolution that never leaves the container's root (CVE-2021-30465 class). Everything the engine
 * mounts onto, creates or writes inside the rootfs is reached through these, from an fd of the root. */

int openat2_fd(int dir_fd, const char *path, uint64_t flags, uint64_t resolve);

typedef enum ChaseFlags {
        CHASE_MKDIR_P = 1 << 0, /* create missing directories (and the final one) */
        CHASE_MKFILE = 1 << 1,  /* with CHASE_MKDIR_P: the final component is created as an empty file */
        CHASE_NOFOLLOW_LAST = 1 << 2, /* the final component must not be a symlink: -ELOOP */
} ChaseFlags;

/* Resolves path (absolute or relative, always taken relative to root_fd) as if root_fd were "/", with
 * RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS: symlinks and ".." are clamped to root_fd, /proc magic links
 * refused. Returns an O_PATH|O_CLOEXEC fd in *ret_fd. Components are created one at a time with
 * mkdirat() on the fd of their already-resolved parent, so a racing rename cannot send them out. */
int chase_in_root(int root_fd, const char *path, ChaseFlags flags, int *ret_fd);
