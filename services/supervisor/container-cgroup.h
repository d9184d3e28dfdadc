/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgroup.h"

/* Where a running container's cgroup is, for the freezer (freezer.c) and the statistics (stats.c).
 * The engine recorded the absolute path of its memory cgroup's OOM file in <state dir>/oom-file
 * (cgroup-oom.h): the cgroup's path relative to the hierarchies' roots follows from it, the same in
 * every v1 hierarchy, the unified one of the hybrid layout, and v2 (and inside a systemd scope). */
typedef struct ContainerCgroup {
        CgroupLayout layout;
        char rel[PATH_MAX]; /* "berth/<id>", "berth.slice/berth-<id>.scope", … (no leading '/') */
} ContainerCgroup;

/* -ENOENT when the container has no recorded cgroup, -EBADMSG for a path the engine could not have
 * written. */
int container_cgroup_find(int state_dir_fd, ContainerCgroup *ret);

/* The directory of the cgroup in the hierarchy of controller ("memory", "cpuacct", "freezer", …; NULL:
 * the unified hierarchy, on v2 and hybrid). -ENOENT when that hierarchy or directory does not exist. */
int container_cgroup_dir(const ContainerCgroup *cg, const char *controller, char *buf, size_t size);

/* Reads one unsigned decimal (the first word; "max" → UINT64_MAX) from dir/file. */
int cgroup_read_u64(const char *dir, const char *file, uint64_t *ret);
/* Reads dir/file (at most size-1 bytes, NUL-terminated). */
int cgroup_read_text(const char *dir, const char *file, char *buf, size_t size);
