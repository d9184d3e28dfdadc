/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <fcntl.h>
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <stdio.h>

#include "berthctl.h"
#include "bus-util.h"
#include "output.h"
#include "table.h"

/* berthctl images mount REF DIR | unmount DIR | usage [REF] */

/* The directory goes to the broker as an fd we opened ourselves, with our own permissions: no daemon
 * ever resolves a path the user typed. O_PATH is enough to name a mount point. */
static int open_dir(const char *what, const char *path) {
        int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0) {
                fprintf(stderr, "berthctl: %s: cannot open directory '%s': %m\n", what, path);
                return -errno;
        }
        return fd;
}

int images_verb_mount(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_close_ int fd = -EBADF;
        uint64_t id;
        int r;

        if (wants_help(argc, argv)) {
                printf("berthctl images mount REF DIR\n\n"
                       "Mount the unpacked image REF (this machine's platform) read-only on DIR.\n"
                       "Undo with 'berthctl images unmount DIR'.\n");
                return 0;
        }
        if (argc != 3) {
                fprintf(stderr, "berthctl: images mount: expected REF and DIR\n");
                return -EINVAL;
        }
        fd = open_dir("images mount", argv[2]);
        if (fd < 0)
                return fd;
        r = broker_connect_call(&bus, "MountImage", &reply, "images mount", "sht", argv[1], fd, UINT64_C(0));
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "t", &id);
        if (r < 0)
                return report_bus_error("images mount", NULL, r);
        if (!arg.quiet)
                printf("%s mounted on %s\n", argv[1], argv[2]);
        return 0;
}

int images_verb_unmount(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_close_ int fd = -EBADF;

        if (wants_help(argc, argv)) {
                printf("berthctl images unmount DIR\n\nUnmount an image view made by 'berthctl images "
                       "mount'.\n");
                return 0;
        }
        if (argc != 2) {
                fprintf(stderr, "berthctl: images unmount: expected DIR\n");
                return -EINVAL;
        }
        fd = open_dir("images unmount", argv[1]);
        if (fd < 0)
                return fd;
        return broker_connect_call(&bus, "UnmountImage", NULL, "images unmount", "ht", fd, UINT64_C(0));
}

static const TableColumn usage_columns[] = {
        { "REF", -50, "reference" },         { "CONTENT", 10, "content_size" },
        { "UNPACKED", 10, "unpacked_size" }, { "SHARED", 10, "shared_size" },
        { "UNIQUE", 10, "unique_size" },     { "UNPACKED?", 0, "unpacked" },
};

int images_verb_usage(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *table = NULL;
        const char *ref = "";
        TableMode mode;
        int r;

        r = table_parse_args(
                "images usage",
                "berthctl images usage [--json] [-q] [REF]\n\n"
                "Disk usage per image: compressed blobs, unpacked snapshots, bytes shared with other\n"
                "images and bytes only this image holds (what removing it and 'content gc' frees).\n",
                argc, argv, &ref, 1, &mode);
        if (r != 0)
                return r < 0 ? r : 0;
        r = broker_connect_call(&bus, "Usage", &reply, "images usage", "s", ref);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(sttttb)");
        if (r < 0)
                return report_bus_error("images usage", NULL, r);
        table = table_new(usage_columns, ELEMENTSOF(usage_columns), mode);
        for (;;) {
                const char *name;
                uint64_t content, unpacked, shared, unique;
                int is_unpacked;

                r = sd_bus_message_read(reply, "(sttttb)", &name, &content, &unpacked, &shared, &unique,
                                        &is_unpacked);
                if (r < 0)
                        return report_bus_error("images usage", NULL, r);
                if (r == 0)
                        break;
                table_add_string(table, name);
                table_add_bytes(table, content);
                table_add_bytes(table, unpacked);
                table_add_bytes(table, shared);
                table_add_bytes(table, unique);
                table_add_bool(table, is_unpacked, "yes", "no");
        }
        table_print(table);
        return 0;
}
