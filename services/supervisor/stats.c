/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "container-cgroup.h"
#include "stats.h"

/* Limits at or above this are the kernel's "no limit" (v1 writes PAGE_COUNTER_MAX pages as bytes). */
#define MEMORY_UNLIMITED_MIN (UINT64_C(1) << 60)

/* "key value" lines (memory.stat, cpu.stat): the value of key, or UINT64_MAX. */
static uint64_t keyed_value(const char *text, const char *key) {
        size_t l = strlen(key);

        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, key, l) == 0 && p[l] == ' ')
                        return strtoull(p + l + 1, NULL, 10);
        return UINT64_MAX;
}

static void read_v1(const ContainerCgroup *cg, ContainerStats *s, char *buf, size_t size) {
        char dir[PATH_MAX];
        uint64_t v;

        if (container_cgroup_dir(cg, "cpuacct", dir, sizeof(dir)) >= 0)
                (void) cgroup_read_u64(dir, "cpuacct.usage", &s->cpu_usage_ns);
        if (container_cgroup_dir(cg, "memory", dir, sizeof(dir)) >= 0) {
                if (cgroup_read_u64(dir, "memory.usage_in_bytes", &s->memory_usage) >= 0 &&
                    cgroup_read_text(dir, "memory.stat", buf, size) >= 0 &&
                    (v = keyed_value(buf, "total_inactive_file")) != UINT64_MAX && v < s->memory_usage)
                        s->memory_usage -= v;
                if (cgroup_read_u64(dir, "memory.limit_in_bytes", &s->memory_limit) >= 0 &&
                    s->memory_limit >= MEMORY_UNLIMITED_MIN)
                        s->memory_limit = 0;
        }
        if (container_cgroup_dir(cg, "pids", dir, sizeof(dir)) >= 0)
                (void) cgroup_read_u64(dir, "pids.current", &s->pids);
        if (container_cgroup_dir(cg, "blkio", dir, sizeof(dir)) >= 0 &&
            (cgroup_read_text(dir, "blkio.throttle.io_service_bytes", buf, size) >= 0 ||
             cgroup_read_text(dir, "blkio.io_service_bytes_recursive", buf, size) >= 0)) {
                /* "MAJ:MIN Read N" lines per device, then "Total N". */
                s->block_read = s->block_write = 0;
                for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line;
                     line = strtok_r(NULL, "\n", &save)) {
                        char dev[32], op[16];
                        uint64_t n;

                        if (sscanf(line, "%31s %15s %" SCNu64, dev, op, &n) != 3)
                                continue;
                        if (strcmp(op, "Read") == 0)
                                s->block_read += n;
                        else if (strcmp(op, "Write") == 0)
                                s->block_write += n;
                }
        }
}

static void read_v2(const ContainerCgroup *cg, ContainerStats *s, char *buf, size_t size) {
        char dir[PATH_MAX];
        uint64_t v;

        if (container_cgroup_dir(cg, NULL, dir, sizeof(dir)) < 0)
                return;
        if (cgroup_read_text(dir, "cpu.stat", buf, size) >= 0 &&
            (v = keyed_value(buf, "usage_usec")) != UINT64_MAX)
                s->cpu_usage_ns = v * 1000;
        if (cgroup_read_u64(dir, "memory.current", &s->memory_usage) >= 0 &&
            cgroup_read_text(dir, "memory.stat", buf, size) >= 0 &&
            (v = keyed_value(buf, "inactive_file")) != UINT64_MAX && v < s->memory_usage)
                s->memory_usage -= v;
        if (cgroup_read_u64(dir, "memory.max", &s->memory_limit) >= 0 &&
            s->memory_limit >= MEMORY_UNLIMITED_MIN)
                s->memory_limit = 0;
        (void) cgroup_read_u64(dir, "pids.current", &s->pids);
        if (cgroup_read_text(dir, "io.stat", buf, size) >= 0) {
                s->block_read = s->block_write = 0;
                for (const char *p = buf; (p = strstr(p, "bytes=")); p += 6) {
                        if (p - buf >= 1 && p[-1] == 'r')
                                s->block_read += strtoull(p + 6, NULL, 10);
                        else if (p - buf >= 1 && p[-1] == 'w')
                                s->block_write += strtoull(p + 6, NULL, 10);
                }
        }
}

int container_stats_read(int state_dir_fd, ContainerStats *ret) {
        ContainerStats s = {
                .cpu_usage_ns = UINT64_MAX,
                .memory_usage = UINT64_MAX,
                .memory_limit = 0,
                .pids = UINT64_MAX,
                .block_read = UINT64_MAX,
                .block_write = UINT64_MAX,
        };
        ContainerCgroup cg;
        char buf[8192];
        int r;

        r = container_cgroup_find(state_dir_fd, &cg);
        if (r < 0)
                return r;
        if (cg.layout == CGROUP_LAYOUT_V2)
                read_v2(&cg, &s, buf, sizeof(buf));
        else
                read_v1(&cg, &s, buf, sizeof(buf));
        *ret = s;
        return 0;
}
