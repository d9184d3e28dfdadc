/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A container's network namespace as a file: a new namespace bind-mounted on <dir>/<id> (as `ip netns
 * add` does), so that it outlives its processes, the CNI plugins can enter it by path, and a DEL can
 * still reach it after the container, its shim or the supervisor died. Both run in the host mount
 * namespace (the bind mount must be where the plugins and the container's init look). */

/* Creates <dir> if needed, then the namespace file at path, its loopback up. -EEXIST if path exists. */
int netns_create(const char *dir, const char *path);
/* Unmounts and removes it; 0 when it is not there. */
int netns_remove(const char *path);
