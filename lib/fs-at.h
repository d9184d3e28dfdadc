/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <dirent.h>
#include <stdint.h>
#include <sys/types.h>

/* Everything here works on directory fds, never on absolute host paths. */

/* openat2(root_fd, path, flags | O_CLOEXEC) with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | extra_resolve:
 * symlinks (absolute or with "..") are resolved as if root_fd were "/", so the result is always inside
 * root_fd. path "" means root_fd itself. Returns an fd or -errno. */
int open_in_root(int root_fd, const char *path, int flags, uint64_t extra_resolve);

/* Removes name (a file of any type, or a directory tree) relative to parent_fd, without ever following a
 * symlink: each level is opened with O_NOFOLLOW relative to its parent's fd. Adds the freed st_blocks to
 * *freed when freed is not NULL. -ENOENT if there is nothing. */
int rm_rf_at(int parent_fd, const char *name, uint64_t *freed);

/* Removes everything inside dir_fd (but not dir_fd itself). */
int rm_rf_children(int dir_fd, uint64_t *freed);

/* opendir() of dir_fd/name (O_NOFOLLOW; "." for dir_fd itself) on a fd of its own: dir_fd stays the
 * caller's. */
int opendir_at(int dir_fd, const char *name, DIR **ret);
