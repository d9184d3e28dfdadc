/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>

#include "fs-util.h"
#include "macro.h"
#include "json-util.h"
#include "user-resolve.h"

int parse_id(const char *s, uint32_t *ret) {
        uint64_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                v = v * 10U + (uint64_t) (*p - '0');
                if (v >= UINT32_MAX) /* (uid_t) -1 means "no change" to the kernel: never an id */
                        return -ERANGE;
        }
        *ret = (uint32_t) v;
        return 0;
}

/* Reads rootfs/etc/<name>: resolved inside the rootfs (symlinks too), no magic links, non-blocking
 * open so a FIFO cannot hang us, regular file, size cap. -ENOENT when it does not exist. */
static int read_db(int rootfs_fd, const char *name, char **ret, char **ret_error) {
        struct open_how how = {
                .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
        };
        _cleanup_close_ int fd = -EBADF;
        int r;

        fd = (int) syscall(SYS_openat2, rootfs_fd, name, &how, sizeof(how));
        if (fd < 0) {
                if (errno == ENOENT)
                        return -ENOENT;
                if (errno == ENOMEM)
                        return -ENOMEM;
                /* ELOOP, EXDEV, ENOTDIR…: the image's file is unusable, which is the image's problem. */
                return json_set_error(ret_error, EINVAL, "cannot open the image's /%s: %s", name,
                                      strerror(errno));
        }
        r = read_regular_file_fd(fd, USER_DB_SIZE_MAX, ret, NULL);
        if (r == -EBADFD)
                return json_set_error(ret_error, EINVAL, "the image's /%s is not a regular file", name);
        if (r == -EFBIG)
                return json_set_error(ret_error, EFBIG, "the image's /%s is larger than %u bytes", name,
                                      USER_DB_SIZE_MAX);
        if (r < 0)
                return json_set_error(ret_error, r, "cannot read the image's /%s: %s", name, strerror(-r));
        return 0;
}

/* Splits one line into at most n ':'-separated fields in place; returns the field count. */
static size_t split_fields(char *line, char **fields, size_t n) {
        size_t k = 0;

        while (k < n) {
                fields[k++] = line;
                line = strchr(line, ':');
                if (!line)
                        break;
                *line++ = 0;
        }
        return k;
}

typedef struct PasswdEntry {
        char name[256];
        uint32_t uid, gid;
        char home[256];
} PasswdEntry;

/* Finds the first well-formed entry with that name (by_name) or uid. Malformed lines (wrong field
 * count, bad numbers, overlong fields) are skipped, never half-used. 1 found, 0 not. */
static int passwd_find(const char *db, const char *name, uint32_t uid, PasswdEntry *ret) {
        const char *p = db;

        while (p && *p) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t) (nl - p) : strlen(p);
                char line[4096], *f[8];
                uint32_t u, g;

                if (len < sizeof(line)) {
                        memcpy(line, p, len);
                        line[len] = 0;
                        if (split_fields(line, f, 8) == 7 && parse_id(f[2], &u) >= 0 &&
                            parse_id(f[3], &g) >= 0 && strlen(f[0]) < sizeof(ret->name) && *f[0] &&
                            (name ? streq(f[0], name) : u == uid)) {
                                snprintf(ret->name, sizeof(ret->name), "%s", f[0]);
                                ret->uid = u;
                                ret->gid = g;
                                snprintf(ret->home, sizeof(ret->home), "%s",
                                         f[5][0] == '/' && strlen(f[5]) < sizeof(ret->home) ? f[5] : "/");
                                return 1;
                        }
                }
                p = nl ? nl + 1 : NULL;
        }
        return 0;
}

/* Walks /etc/group: by group name (→ *ret_gid) and/or collects every gid whose member list has user. */
static int group_scan(const char *db, const char *group_name, uint32_t *ret_gid, const char *user,
                      UserIds *ids) {
        const char *p = db;
        int found = 0;

        while (p && *p) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t) (nl - p) : strlen(p);
                char line[65536], *f[5];
                uint32_t g;

                if (len < sizeof(line)) {
                        memcpy(line, p, len);
                        line[len] = 0;
                        if (split_fields(line, f, 5) == 4 && parse_id(f[2], &g) >= 0 && *f[0]) {
                                if (group_name && !found && streq(f[0], group_name)) {
                                        *ret_gid = g;
                                        found = 1;
                                }
                                if (user && ids) {
                                        char *save = NULL;
                                        for (char *m = strtok_r(f[3], ",", &save); m;
                                             m = strtok_r(NULL, ",", &save))
                                                if (streq(m, user)) {
                                                        bool dup = false;
                                                        for (size_t i = 0; i < ids->n_groups; i++)
                                                                dup = dup || ids->groups[i] == g;
                                                        if (!dup && ids->n_groups < USER_GROUPS_MAX)
                                                                ids->groups[ids->n_groups++] = g;
                                                        break;
                                                }
                                }
                        }
                }
                p = nl ? nl + 1 : NULL;
        }
        return found;
}

static bool db_name_is_valid(const char *n) {
        /* What shadow-utils accepts, loosely; certainly no ':' ',' '\n' or control bytes. */
        if (!*n || strlen(n) > 255 || n[0] == '-')
                return false;
        for (const char *p = n; *p; p++)
                if ((unsigned char) *p <= 0x20 || *p == ':' || *p == ',' || *p == '/' || *p == 0x7f)
                        return false;
        return true;
}

int user_resolve(int rootfs_fd, const char *spec, UserIds *ret, char **ret_error) {
        _cleanup_free_ char *passwd = NULL, *group = NULL, *copy = NULL;
        const char *user_part, *group_part = NULL;
        PasswdEntry pw = {};
        bool have_pw = false;
        uint32_t uid, gid;
        char *colon;
        int r;

        *ret = (UserIds){};
        copy = strdup(isempty(spec) ? "0" : spec);
        if (!copy)
                return -ENOMEM;
        colon = strchr(copy, ':');
        if (colon) {
                *colon = 0;
                group_part = colon + 1;
                if (strchr(group_part, ':') || !*group_part)
                        return json_set_error(ret_error, EINVAL,
                                              "invalid user '%.64s': expected user[:group]", spec);
        }
        user_part = copy;

        r = read_db(rootfs_fd, "etc/passwd", &passwd, ret_error);
        if (r < 0 && r != -ENOENT)
                return r;
        r = read_db(rootfs_fd, "etc/group", &group, ret_error);
        if (r < 0 && r != -ENOENT)
                return r;

        r = parse_id(user_part, &uid);
        if (r == -ERANGE)
                return json_set_error(ret_error, ERANGE, "invalid user '%.64s': uid out of range", spec);
        if (r >= 0) {
                have_pw = passwd && passwd_find(passwd, NULL, uid, &pw) > 0;
                gid = have_pw ? pw.gid : 0;
        } else {
                if (!db_name_is_valid(user_part))
                        return json_set_error(ret_error, EINVAL, "invalid user name '%.64s'", user_part);
                if (!passwd || passwd_find(passwd, user_part, 0, &pw) <= 0)
                        return json_set_error(ret_error, ESRCH, "no user '%.64s' in the image's /etc/passwd",
                                              user_part);
                have_pw = true;
                uid = pw.uid;
                gid = pw.gid;
        }

        if (group_part) {
                r = parse_id(group_part, &gid);
                if (r == -ERANGE)
                        return json_set_error(ret_error, ERANGE, "invalid group '%.64s': gid out of range",
                                              group_part);
                if (r < 0) {
                        if (!db_name_is_valid(group_part))
                                return json_set_error(ret_error, EINVAL, "invalid group name '%.64s'",
                                                      group_part);
                        if (!group || group_scan(group, group_part, &gid, NULL, NULL) <= 0)
                                return json_set_error(ret_error, ESRCH,
                                                      "no group '%.64s' in the image's /etc/group",
                                                      group_part);
                }
        }

        ret->uid = uid;
        ret->gid = gid;
        ret->groups[ret->n_groups++] = gid;
        /* SECURITY (S8, CVE-2023-25173): the memberships listed in the image's /etc/group apply whatever
         * form USER took, uid:gid included, so files denied to a group stay denied. */
        if (have_pw && group)
                (void) group_scan(group, NULL, NULL, pw.name, ret);
        snprintf(ret->home, sizeof(ret->home), "%s", have_pw ? pw.home : "/");
        return 0;
}
