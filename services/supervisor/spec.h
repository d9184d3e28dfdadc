/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "berth-error.h"

/* The subset of the OCI runtime spec (config.json) that berth's spec builder writes and the engine
 * executes. Everything is read in the caller, before the container's init is cloned, so that the
 * init child only makes system calls on ready data. Unknown members are ignored (as the OCI spec
 * allows); known members of the wrong type are refused. */

#define SPEC_ARGS_MAX 4096U
#define SPEC_ENV_MAX 4096U
#define SPEC_MOUNTS_MAX 256U
#define SPEC_PATHS_MAX 256U /* masked and read-only paths each */
#define SPEC_GROUPS_MAX 256U
#define SPEC_SYSCTL_MAX 128U
#define SPEC_STRING_MAX 32768U /* one env entry, one argument, one path */

/* Annotation that selects berth's built-in default seccomp profile (seccomp-profile.c). Without it and
 * without linux.seccomp, the container runs unconfined, as with runc. */
#define SPEC_ANNOTATION_SECCOMP "org.berth.seccomp"

typedef enum SpecNamespaceType {
        SPEC_NS_MOUNT,
        SPEC_NS_PID,
        SPEC_NS_UTS,
        SPEC_NS_IPC,
        SPEC_NS_NET,
        SPEC_NS_CGROUP,
        SPEC_NS_USER,
        _SPEC_NS_MAX,
} SpecNamespaceType;

typedef struct SpecNamespace {
        bool enabled;
        char *path; /* join an existing namespace instead of creating one */
} SpecNamespace;

typedef struct SpecMount {
        char *destination;
        char *type;
        char *source;
        char **options;
        /* Binds only, parent side: the source cloned as a detached mount before the init's clone()
         * (mounts_clone_bind_sources()), or -EBADF. */
        int source_mnt_fd;
} SpecMount;

typedef struct SpecRlimit {
        int resource;
        uint64_t soft, hard;
} SpecRlimit;

typedef struct SpecSysctl {
        char *key;
        char *value;
} SpecSysctl;

typedef struct SpecCaps {
        uint64_t bounding, effective, permitted, inheritable, ambient;
} SpecCaps;

#define SPEC_DEVICE_RULES_MAX 256U

/* linux.resources.devices[]: evaluated in order, the last rule that matches decides (as the v1 devices
 * controller and runc/crun's eBPF filters do). */
enum {
        SPEC_DEVICE_READ = 1 << 0,
        SPEC_DEVICE_WRITE = 1 << 1,
        SPEC_DEVICE_MKNOD = 1 << 2,
        SPEC_DEVICE_ALL = SPEC_DEVICE_READ | SPEC_DEVICE_WRITE | SPEC_DEVICE_MKNOD,
};

typedef struct SpecDeviceRule {
        bool allow;
        char type;            /* 'a' (any), 'c' or 'b' */
        int64_t major, minor; /* -1 = any */
        unsigned access;      /* SPEC_DEVICE_* bits */
} SpecDeviceRule;

typedef struct SpecResources {
        int64_t memory_limit;    /* bytes, 0 = none */
        int64_t memory_swap;     /* bytes, 0 = same as memory_limit */
        int64_t cpu_quota;       /* µs per period, 0 = none */
        uint64_t cpu_period;     /* µs, 0 = 100000 */
        int64_t pids_limit;      /* 0 = none */
        SpecDeviceRule *devices; /* NULL when the spec has no linux.resources.devices: no filter */
        size_t n_devices;
} SpecResources;

/* linux.devices: host device nodes bound into the container's /dev (spec-devices.c). */
#define SPEC_DEVICES_MAX 4096U
typedef struct SpecDevice {
        char *path; /* "/dev/…", no "." or ".." components */
        char type;  /* 'c' or 'b' */
        unsigned major, minor;
} SpecDevice;

typedef enum SpecSeccompMode {
        SPEC_SECCOMP_NONE,
        SPEC_SECCOMP_DEFAULT, /* berth's built-in profile */
} SpecSeccompMode;

typedef struct Spec {
        char *root_path;
        bool root_readonly;

        bool terminal;
        uid_t uid;
        gid_t gid;
        gid_t *additional_gids;
        size_t n_additional_gids;
        mode_t umask;
        char **args;
        char **env;
        char *cwd;
        SpecCaps caps;
        bool have_caps;
        SpecRlimit *rlimits;
        size_t n_rlimits;
        bool no_new_privileges;
        bool have_oom_score_adj;
        int oom_score_adj;

        char *hostname;
        SpecMount *mounts;
        size_t n_mounts;

        SpecNamespace namespaces[_SPEC_NS_MAX];
        char *cgroups_path;
        SpecResources resources;
        SpecSysctl *sysctls;
        size_t n_sysctls;
        char **masked_paths;
        char **readonly_paths;
        SpecSeccompMode seccomp;
        SpecDevice *devices;
        size_t n_devices;
} Spec;

int spec_parse(JsonNode *root, Spec *ret, BerthError *err);
void spec_done(Spec *spec);

/* Checks a sysctl key and value against the namespaced allow-list (see spec.c for why). */
int spec_sysctl_check(const Spec *spec, const char *key, const char *value, BerthError *err);

const char *spec_namespace_name(SpecNamespaceType t);

/* linux.devices (spec-devices.c), called by spec_parse(); linux.resources.devices, the device cgroup's
 * rules, is parsed with the other resources (spec.c). */
int spec_parse_devices(JsonObject *linux_object, Spec *s, BerthError *err);
