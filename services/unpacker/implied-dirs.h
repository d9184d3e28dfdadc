/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Directories a layer only implies (it has "a/b/file" but no entry for "a/b") get, like containerd's
 * applier (pkg/archive mkparent with the parent snapshots), the mode, owner and xattrs of the same path in
 * the first layer below that has it: each lower snapshot is searched from the top, the path resolved
 * inside that snapshot alone (its own symlinks followed, never out of it); a lower that has something
 * else than a directory there ends the search (the default 0755 root:root stays), as does none having
 * it. Without this a layer adding /var/empty/x would turn a lower 0700 /var/empty into 0755.
 *
 * Runs in the unpacker service after the sandboxed child finished and before the commit: the child
 * never sees the lower snapshots.
 *
 * list_fd: what the child wrote (NUL-terminated paths, read from offset 0, at most max_bytes);
 * fs_fd: the new snapshot's fs/; lower_fds: the parent chain's fs/ directories, top-most first. */
int implied_dirs_apply(int list_fd, size_t max_bytes, int fs_fd, const int *lower_fds, size_t n_lowers,
                       char **ret_error);
