/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* A container's root file system: an active snapshot (snapshots/active/<id>/{fs,work}, next to the
 * unpacker's committed snapshots, which it never touches) as the overlay's upper layer over the image's
 * chain. Both calls run in the host mount namespace (host-mntns.h): the mount is what the engine and
 * the container see. */

#define ROOTFS_ACTIVE_DIR "active"

/* chain_hexes: the committed snapshots, top layer first. Creates the active snapshot and mounts the
 * overlay onto target_path (an existing empty directory), read-only when read_only. On failure nothing
 * is left (no mount, no active snapshot). */
int active_rootfs_mount(const char *snapshots_path, const char *id, char *const *chain_hexes, size_t n,
                        const char *target_path, bool read_only, char **ret_error);

/* Unmounts target_path (if mounted) and removes the active snapshot. Idempotent. */
int active_rootfs_remove(const char *snapshots_path, const char *id, const char *target_path);
