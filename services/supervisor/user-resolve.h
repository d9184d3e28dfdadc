/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* USER values ("name", "uid", "name:group", "uid:gid", "") resolved against the image's own
 * /etc/passwd and /etc/group, read through openat2(RESOLVE_IN_ROOT) below the rootfs: never the host's
 * NSS (no getpwnam() in the supervisor: S14), never a file outside the rootfs, never anything but a
 * bounded regular file. */

#define USER_DB_SIZE_MAX (10U * 1024U * 1024U) /* containerd's cap for passwd/group */
#define USER_GROUPS_MAX 256U

typedef struct UserIds {
        uid_t uid;
        gid_t gid;
        gid_t groups[USER_GROUPS_MAX]; /* supplementary groups, the primary gid first */
        size_t n_groups;
        char home[256]; /* from passwd, "/" when unknown or unusable */
} UserIds;

/* Strict unsigned decimal: digits only (no sign, space, 0x), no overflow, and below (uid_t) -1, which is
 * not an id (S10: CVE-2024-40635). -EINVAL not a number, -ERANGE too large. */
int parse_id(const char *s, uint32_t *ret);

int user_resolve(int rootfs_fd, const char *spec, UserIds *ret, char **ret_error);
