/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "berth-error.h"
#include "spec.h"

/* Child side, in the container's new mount namespace, in this order (engine.c):
 * rootfs_prepare → mounts_apply → dev_setup (devices.c) → rootfs_pivot → (sysctls) →
 * paths_mask → paths_readonly → rootfs_finish_readonly. */

/* Makes the whole tree private (nothing propagates back to the host), binds root.path onto itself so
 * that it is a mount point pivot_root accepts, and returns an O_PATH fd of it. */
int rootfs_prepare(const Spec *spec, int *ret_root_fd, BerthError *err);

/* The mounts of the spec, in order; destinations resolved inside root_fd (fs-in-root.c). Called twice:
 * cgroup_mounts=false for all but the "cgroup" ones (before the init is in its cgroup), then true for
 * those (after it unshared its cgroup namespace, so that cgroup2 shows its own subtree as root). */
int mounts_apply(int root_fd, const Spec *spec, bool cgroup_mounts, BerthError *err);

/* Parent side, before the init is cloned into its own mount namespace: each bind source becomes a
 * detached mount (spec->mounts[i].source_mnt_fd) that the init attaches. Sources passed as
 * /proc/self/fd/N by the supervisor are fds of the caller's (host) namespace, which open_tree()
 * accepts only from that namespace. */
int mounts_clone_bind_sources(Spec *spec, BerthError *err);

/* pivot_root into root_fd and detach the old root: afterwards no path reaches the host. */
int rootfs_pivot(int root_fd, BerthError *err);

/* After the pivot. Masked: /dev/null bound over files, an empty read-only tmpfs over directories;
 * read-only: a read-only bind of the path onto itself. A path that is a symlink is refused. */
int paths_mask(char **paths, BerthError *err);
int paths_readonly(char **paths, BerthError *err);
int rootfs_finish_readonly(const Spec *spec, BerthError *err);
