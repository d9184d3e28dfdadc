/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "berth-error.h"
#include "spec.h"

/* Populates the container's /dev (a fresh tmpfs from the spec's mounts) before the pivot: the OCI
 * default devices as read-write binds of the host's nodes (no mknod: the container never needs
 * CAP_MKNOD for them and the host node's identity is checked), ptmx → pts/ptmx, and the /proc/self/fd
 * links. /dev itself must be a real directory: an image's /dev symlink is refused, never followed. */
int dev_setup(int root_fd, const Spec *spec, BerthError *err);
