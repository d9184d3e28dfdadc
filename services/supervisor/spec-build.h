/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>

#include "oci-types.h"
#include "request.h"
#include "user-resolve.h"

/* Request + image config (+ the user resolved in the image) → the OCI runtime spec (config.json) the
 * engine executes. A pure function of its inputs, so the defaults can be checked against golden files.
 *
 * Defaults, at least as strict as `ctr run` and podman: podman's 11 capabilities (no NET_RAW, MKNOD,
 * AUDIT_WRITE), nothing inheritable or ambient, berth's default seccomp profile, no_new_privs,
 * RLIMIT_NOFILE 1024, mount/pid/uts/ipc/net/cgroup namespaces, /proc, /dev (tmpfs), /dev/pts, /dev/shm,
 * /dev/mqueue, /sys read-only, /run, and the masked and read-only paths of runc and podman. */

#define SPEC_DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define SPEC_NOFILE_DEFAULT 1024U
#define SPEC_CPU_PERIOD_USEC 100000U

typedef struct SpecInput {
        const char *id;          /* 32 hex */
        const char *rootfs_path; /* absolute host path, mounted by the caller */
        const char *cgroup_path; /* linux.cgroupsPath */
        const ContainerRequest *request;
        const OciImageConfig *image;
        const UserIds *user;
        const int *mount_fds; /* fd numbers of the bind sources in the creating process, one per mount */
        /* A CNI network (net-attach.c): the namespace file the init joins, and the directory holding
         * the container's resolv.conf, hosts and hostname. NULL for --net none and host. */
        const char *netns_path;
        const char *etc_dir;
} SpecInput;

int spec_build(const SpecInput *in, JsonNode **ret, char **ret_error);

/* The capability set the container gets (names, sorted by number), after privileged/cap_drop/cap_add. */
int spec_capabilities(const ContainerRequest *req, char ***ret);
