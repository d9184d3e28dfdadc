/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "berth-error.h"

/* Under systemd (PID 1, detected), each container's shim and the container itself live in one transient
 * unit of their own, berth-<id>.scope under berth.slice, never in berth-supervisor.service's cgroup:
 * stopping, restarting or killing the supervisor's unit then cannot touch a container, and systemd sees
 * no left-over processes in it. The creating process (the shim-to-be) asks systemd for the scope with its
 * own pid, Delegate=yes, and then owns the subtree:
 *
 *   berth.slice/berth-<id>.scope/            systemd's unit; no process of its own (cgroup v2's
 *                                            "no internal processes" rule once controllers are on)
 *   berth.slice/berth-<id>.scope/shim        berth-shim
 *   berth.slice/berth-<id>.scope/container   the container: linux.cgroupsPath, its limits, its device
 *                                            filter and its OOM events (the engine's v2/v1 backend)
 *
 * docs/systemd.md says why one delegated scope and not a scope per process. */

#define CONTAINER_SCOPE_SLICE "berth.slice"

typedef struct ContainerScope {
        sd_bus *bus;
        char unit[64];
        bool replied, job_done;
        int call_error;
        char error_message[256];
        char job_result[32];
} ContainerScope;

/* Whether containers get a scope: systemd is PID 1 (sd_booted()'s test). */
bool container_scope_wanted(void);

/* Asks systemd for berth-<id>.scope holding the calling process; returns without waiting, so that the
 * caller can mount the rootfs meanwhile. description: what `systemctl status` shows. */
int container_scope_begin(ContainerScope *s, const char *id, const char *description, BerthError *err);

/* Waits for the scope's start job, moves the caller into <scope>/shim (cgroup v2) and returns the
 * container's cgroup path ("/berth.slice/berth-<id>.scope/container") for linux.cgroupsPath. */
int container_scope_finish(ContainerScope *s, char *ret_path, size_t size, BerthError *err);

void container_scope_done(ContainerScope *s);

/* Stops berth-<id>.scope (killing what is left in it) without waiting; 0 also when systemd no longer
 * knows it (a scope is collected as soon as it is empty). */
int container_scope_stop(const char *id);
