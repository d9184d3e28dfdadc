/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Read-only views of committed image snapshots, for `berthctl images mount`.
 *
 * The caller names the top snapshot only (a chain id); the supervisor walks the parents through
 * the snapshot records the unpacker wrote, builds the overlay itself, and mounts it onto a directory
 * the *user* opened and passed as an fd, never onto a path it was told. */

/* Mount the chain topped by `chain_id` read-only (nosuid, nodev) onto the directory `target_fd`.
 * snapshots_fd: the unpacker's snapshot store. On failure ret_error may hold a message. */
int image_mount(int snapshots_fd, const char *snapshots_path, const char *chain_id, int target_fd,
                uint64_t *ret_mount_id, char **ret_error);

/* Unmount the image view whose root `target_fd` is; refuses anything that is not a view made by
 * image_mount() from this store. */
int image_unmount(const char *snapshots_path, int target_fd, char **ret_error);

/* image_mount() and image_unmount() as the supervisor must call them: in a forked child that joins
 * the host's mount namespace first (host-mntns.h) and re-opens the store at snapshots_path there.
 * Under systemd the supervisor has a private mount namespace: a view made in it would be invisible to
 * the caller, and the kernel refuses to attach it onto the caller's directory (EINVAL) anyway. The
 * child reports (errno, message) over a pipe; the call blocks until it answers (milliseconds), at most
 * a minute. */
int image_mount_host(const char *snapshots_path, const char *chain_id, int target_fd, uint64_t *ret_mount_id,
                     char **ret_error);
int image_unmount_host(const char *snapshots_path, int target_fd, char **ret_error);

/* The chain ids used by every image view currently mounted (NULL-terminated, malloc'd), so that
 * garbage collection can keep them. */
int image_mounts_in_use(const char *snapshots_path, char ***ret_chain_ids);

/* Do an overlay's super options (mountinfo) describe a view image_mount() made from this store: only
 * lowerdirs, each "<snapshots_path>/<hex>/fs"? (Exposed for the unit test.) */
bool image_view_options_are_ours(const char *snapshots_path, const char *opts);
