/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* The supervisor's config.json (OCI runtime spec) of a container, as it hands it to the broker, is read
 * like any input from another process: at most SPEC_SUMMARY_INPUT_MAX bytes, parsed with the depth cap
 * of json-util, every member type-checked; a spec that is not what berth's spec builder writes is
 * refused whole (-EBADMSG with a message). */
#define SPEC_SUMMARY_INPUT_MAX (4U * 1024U * 1024U)
#define SPEC_SUMMARY_LIST_MAX 8192U /* entries of any one list (args, env, mounts, capabilities, …) */

/* Summary for `inspect` (compact JSON, malloc'd): Process {Args, Env, Cwd, User {Uid, Gid,
 * AdditionalGids}, Terminal, NoNewPrivileges, Capabilities {Bounding, Effective, Permitted, Inheritable,
 * Ambient}, Rlimits [{Type, Soft, Hard}]}, Hostname, ReadOnlyRootfs, Seccomp ("default"|"unconfined"),
 * Namespaces [{Type[, Path]}], Mounts [{Destination, Type, Source, Options}], Resources {Memory,
 * MemorySwap, CpuQuota, CpuPeriod, PidsLimit (null when unset), DevicesAllowAll}, Devices (count),
 * MaskedPaths, ReadonlyPaths (counts), CgroupsPath. */
int spec_summary_build(const char *data, size_t size, char **ret_json, char **ret_error);
