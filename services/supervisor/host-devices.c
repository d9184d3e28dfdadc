/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "host-devices.h"
#include "macro.h"
#include "spec.h"

#define HOST_DEVICES_DEPTH_MAX 3

static bool skipped(const char *rel) {
        /* The container gets its own devpts, shm and mqueue; /dev/console is its terminal (or absent), as
         * with runc; the rest are host-private bookkeeping. */
        static const char *const names[] = {
                "pts", "shm", "mqueue", "fd", "console", "ptmx", ".lxc", ".udev"
        };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(rel, names[i]))
                        return true;
        return false;
}

static void scan(JsonBuilder *b, int dir_fd, const char *rel, unsigned depth, unsigned *n) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        int fd;

        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return;
        }
        while ((de = readdir(d)) && *n < SPEC_DEVICES_MAX) {
                /* path: as long as spec-devices.c accepts (a longer one is left out, or the spec of every
                 * privileged container would be refused). */
                char path[256], sub[256];
                struct stat st;

                if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
                        continue;
                if (!snprintf_ok(sub, "%s%s%s", rel, *rel ? "/" : "", de->d_name) || skipped(sub) ||
                    !snprintf_ok(path, "/dev/%s", sub))
                        continue;
                /* Symlinks are not followed (stdin, core, disk/by-id/…): the nodes they name are listed
                 * under their own names. */
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISDIR(st.st_mode) && depth < HOST_DEVICES_DEPTH_MAX) {
                        _cleanup_close_ int sub_fd = openat(dirfd(d), de->d_name,
                                                            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub_fd >= 0)
                                scan(b, sub_fd, sub, depth + 1, n);
                        continue;
                }
                if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
                        continue;
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "path");
                json_builder_add_string_value(b, path);
                json_builder_set_member_name(b, "type");
                json_builder_add_string_value(b, S_ISBLK(st.st_mode) ? "b" : "c");
                json_builder_set_member_name(b, "major");
                json_builder_add_int_value(b, major(st.st_rdev));
                json_builder_set_member_name(b, "minor");
                json_builder_add_int_value(b, minor(st.st_rdev));
                json_builder_set_member_name(b, "fileMode");
                json_builder_add_int_value(b, st.st_mode & 07777);
                json_builder_set_member_name(b, "uid");
                json_builder_add_int_value(b, st.st_uid);
                json_builder_set_member_name(b, "gid");
                json_builder_add_int_value(b, st.st_gid);
                json_builder_end_object(b);
                (*n)++;
        }
}

void host_devices_add_json(JsonBuilder *b, const char *dev_path) {
        _cleanup_close_ int fd = open(dev_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        unsigned n = 0;

        json_builder_set_member_name(b, "devices");
        json_builder_begin_array(b);
        if (fd >= 0)
                scan(b, fd, "", 1, &n);
        json_builder_end_array(b);
}
