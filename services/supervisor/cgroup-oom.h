/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* The engine writes the absolute path of the container cgroup's OOM record into
 * <state dir>/oom-file: memory.events (cgroup v2) or memory.oom_control (v1). Both carry a line
 * "oom_kill N". This reads N from that file (0 or -errno). Self-contained (libc only), so that
 * berth-shim can compile it in and decide "oom" when N > 0 after the init died of SIGKILL. */
int cgroup_oom_kill_count(const char *events_path, uint64_t *ret);

/* The same, given the container's state directory fd (reads <state dir>/oom-file first). -ENOENT when
 * the container has no memory cgroup. */
int cgroup_oom_kill_count_at(int state_dir_fd, uint64_t *ret);

/* Is path (read back from oom-file) one the engine could have written: under /sys/fs/cgroup/, no ".."
 * component? */
bool cgroup_oom_path_is_valid(const char *path);

#define CGROUP_OOM_FILE_NAME "oom-file"
