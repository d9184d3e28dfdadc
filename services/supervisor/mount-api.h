/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* The two steps of the new mount API every mount of the engine goes through (mounts.c, devices.c,
 * cgroup.c): build a mount detached, then attach it onto an fd resolved inside the root. */

/* Attaches a detached mount (from fsmount() or open_tree()) onto target_fd. 0 or -1 with errno. */
int mount_move_onto(int mnt_fd, int target_fd);

/* A detached mount of a new filesystem instance (fsopen/fsconfig/fsmount); data is "k=v,flag,…". */
int mount_fs_detached(const char *type, const char *source, const char *data, uint64_t attr, int *ret_fd);
