/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "berth-error.h"
#include "spec.h"

/* One cgroup per container, behind one ops struct per backend (crun's cgroup-*.c):
 *   v2       the unified hierarchy at /sys/fs/cgroup
 *   v1       per-controller hierarchies under /sys/fs/cgroup/<controller>
 *   hybrid   v1 controllers plus /sys/fs/cgroup/unified (cgroup2, e.g. only hugetlb): the v1 backend
 *            with the unified directory joined as well
 *   systemd  a transient scope with Delegate=yes created through systemd's D-Bus API, when systemd is
 *            PID 1 (detected, never assumed) and cgroupsPath has the "slice:prefix:name" form
 * linux.cgroupsPath: "/a/b" (relative to each hierarchy's root) or "slice:prefix:name" (systemd). */

typedef enum CgroupLayout {
        CGROUP_LAYOUT_V1,
        CGROUP_LAYOUT_V2,
        CGROUP_LAYOUT_HYBRID,
} CgroupLayout;

#define CGROUP_V1_HIERARCHIES_MAX 16

typedef struct Cgroup Cgroup;

typedef struct CgroupOps {
        const char *name;
        /* Before the init exists: create the cgroup and apply the limits (systemd: nothing yet). */
        int (*create)(Cgroup *cg, const Spec *spec, BerthError *err);
        /* Move pid (the init, waiting at sync point 1) into it. */
        int (*enter)(Cgroup *cg, const Spec *spec, pid_t pid, BerthError *err);
        /* Remove it (no process may be left in it). */
        int (*destroy)(Cgroup *cg);
} CgroupOps;

struct Cgroup {
        const CgroupOps *ops;
        CgroupLayout layout;
        char path[PATH_MAX]; /* relative to the hierarchy roots, no leading '/' */
        char unit[256];      /* systemd: the scope's name */
        char slice[256];
        /* v1: the mount points of the hierarchies joined */
        char *hierarchies[CGROUP_V1_HIERARCHIES_MAX];
        size_t n_hierarchies;
        char oom_file[PATH_MAX]; /* memory.events (v2) or memory.oom_control (v1); "" = unknown */
        bool created;
};

extern const CgroupOps cgroup_ops_v1;
extern const CgroupOps cgroup_ops_v2;
extern const CgroupOps cgroup_ops_systemd;
/* StopUnit(unit, "replace") without waiting for the job; 0 also when systemd does not know the unit. */
int cgroup_systemd_stop_unit(const char *unit);

int cgroup_detect_layout(CgroupLayout *ret);
const char *cgroup_layout_name(CgroupLayout l);

/* Picks the backend for spec's cgroupsPath; *ret = NULL when the spec has none (the container stays in
 * the caller's cgroup). */
int cgroup_new(const Spec *spec, Cgroup **ret, BerthError *err);
void cgroup_free(Cgroup *cg);

/* The device rules a spec without linux.resources.devices gets (the ones the spec builder writes): deny
 * all but the default nodes of /dev, mknod of anything. */
void cgroup_device_rules(const Spec *spec, const SpecDeviceRule **ret, size_t *ret_n);

/* Helpers shared by the backends. */
int cgroup_write(const char *dir, const char *file, const char *value);
int cgroup_mkdir_p(const char *root, const char *path);
int cgroup_rmdir_p(const char *root, const char *path);

/* Child side, for a "cgroup" entry of the spec, inside the container's cgroup namespace: a detached
 * mount (cgroup2 read-only on v2; a tmpfs on v1 and hybrid) and, once attached, its contents: each v1
 * hierarchy (and "unified" on hybrid) mounted read-only, so that the container sees its own cgroup as
 * the root of each (no release_agent: CVE-2022-0492), then the tmpfs made read-only.
 * cgroup_prepare_mounts() reads the host's hierarchies in the caller, before the init pivots. */
int cgroup_prepare_mounts(void);
int cgroup_mount_detached(uint64_t attr, int *ret_fd);
int cgroup_mount_populate(int mnt_fd);

/* OOM kills recorded in the cgroup's events file (cgroup-oom.c, no GLib: the shim compiles it in). */
#include "cgroup-oom.h"
