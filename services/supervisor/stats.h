/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* A container's resource use, read from its cgroup (v1, v2, hybrid) for `berthctl stats`. CPU time is a
 * counter: the client turns two samples into a percentage. UINT64_MAX: not available (controller
 * missing). memory_limit 0: unlimited. */
typedef struct ContainerStats {
        uint64_t cpu_usage_ns;
        uint64_t memory_usage; /* without the inactive page cache, as docker shows it */
        uint64_t memory_limit;
        uint64_t pids;
        uint64_t block_read, block_write; /* bytes */
} ContainerStats;

int container_stats_read(int state_dir_fd, ContainerStats *ret);
