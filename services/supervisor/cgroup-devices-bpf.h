/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <linux/bpf.h>
#include <stddef.h>

#include "berth-error.h"
#include "spec.h"

/* The device allow-list on cgroup v2: v2 has no devices controller; the kernel asks an eBPF program of
 * type BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup (and to each ancestor, all of which must
 * agree) for every mknod and every open of a device node by a process in it. We build that program from
 * linux.resources.devices, as the v1 controller would apply the same rules:
 *
 *   - the access of a request is checked bit by bit (mknod, read, write);
 *   - for each bit, the LAST rule that names the bit and matches the device's type, major and minor
 *     decides; no matching rule allows (a fresh v1 cgroup's default, which a leading "deny all" rule
 *     turns into a deny, as the spec builder writes it).
 *
 * The program is plain instructions (no maps, no helpers), loaded with bpf(2). */

#define CGROUP_DEVICES_BPF_INSNS_MAX 8192U

/* The program for rules (n may be 0: everything allowed). *ret is malloc()ed. */
int cgroup_devices_bpf_build(const SpecDeviceRule *rules, size_t n, struct bpf_insn **ret, size_t *ret_n);

/* Loads the program (the kernel's verifier checks it); *ret_fd is the program's fd. */
int cgroup_devices_bpf_load(const SpecDeviceRule *rules, size_t n, int *ret_fd, BerthError *err);

/* Loads the program and attaches it to the cgroup directory cgroup_fd (BPF_F_ALLOW_MULTI: programs of
 * ancestors, e.g. systemd's, keep running too). The attachment lives as long as the cgroup. */
int cgroup_devices_bpf_apply(int cgroup_fd, const SpecDeviceRule *rules, size_t n, BerthError *err);
