/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <stdio.h>

#include "berthctl.h"
#include "bus-util.h"
#include "output.h"

/* berthctl snapshots ls|info|rm: the committed layer snapshots (named by chain id, as containerd's
 * overlayfs snapshotter names its committed snapshots). */

static const char *short_id(const char *id, char buf[static 20]) {
        const char *colon = strchr(id, ':');

        snprintf(buf, 20, "%.12s", colon ? colon + 1 : id);
        return buf;
}

static int verb_ls(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        int r;

        if (wants_help(argc, argv)) {
                printf("berthctl snapshots ls [--json]\n\nList snapshots: CHAIN-ID PARENT SIZE ENTRIES USED-BY.\n");
                return 0;
        }
        r = parse_json_only_args("snapshots ls", argc, argv);
        if (r < 0)
                return r;
        r = broker_connect_call(&bus, "ListSnapshots", &reply, "snapshots ls", NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(ssstuas)");
        if (r < 0)
                return report_bus_error("snapshots ls", NULL, r);
        if (arg.json)
                json_builder_begin_array(b);
        else
                printf("%-71s %-12s %10s %8s %s\n", "CHAIN-ID", "PARENT", "SIZE", "ENTRIES", "USED-BY");
        for (;;) {
                g_auto(GStrv) users = NULL;
                const char *id, *parent, *diff_id;
                uint64_t size;
                uint32_t entries;
                char sz[32], p[20];

                r = sd_bus_message_enter_container(reply, 'r', "ssstuas");
                if (r < 0)
                        return report_bus_error("snapshots ls", NULL, r);
                if (r == 0)
                        break;
                r = sd_bus_message_read(reply, "ssstu", &id, &parent, &diff_id, &size, &entries);
                if (r >= 0)
                        r = sd_bus_message_read_strv(reply, &users);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return report_bus_error("snapshots ls", NULL, r);
                if (arg.json) {
                        json_builder_begin_object(b);
                        json_builder_set_member_name(b, "chain_id");
                        json_builder_add_string_value(b, id);
                        json_builder_set_member_name(b, "parent");
                        json_builder_add_string_value(b, parent);
                        json_builder_set_member_name(b, "diff_id");
                        json_builder_add_string_value(b, diff_id);
                        json_builder_set_member_name(b, "size");
                        json_builder_add_int_value(b, (gint64) size);
                        json_builder_set_member_name(b, "entries");
                        json_builder_add_int_value(b, entries);
                        json_builder_set_member_name(b, "images");
                        json_builder_begin_array(b);
                        for (char **u = users; u && *u; u++)
                                json_builder_add_string_value(b, *u);
                        json_builder_end_array(b);
                        json_builder_end_object(b);
                        continue;
                }
                {
                        g_autofree char *joined = users && *users ? g_strjoinv(",", users) : g_strdup("-");

                        format_bytes(sz, sizeof(sz), size);
                        printf("%-71s %-12s %10s %8" PRIu32 " %s\n", id, isempty(parent) ? "-" : short_id(parent, p),
                               sz, entries, joined);
                }
        }
        if (arg.json) {
                json_builder_end_array(b);
                print_json_builder(b);
        }
        return 0;
}

static int verb_info(int argc, char *argv[]) {
        if (wants_help(argc, argv)) {
                printf("berthctl snapshots info CHAIN-ID\n\nShow one snapshot as JSON.\n");
                return 0;
        }
        if (argc != 2) {
                fprintf(stderr, "berthctl: snapshots info: expected exactly one snapshot id\n");
                return -EINVAL;
        }
        return broker_call_print_json("SnapshotInfo", "snapshots info", argv[1]);
}

static int verb_rm(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        uint64_t freed;
        char sz[32];
        int r;

        if (wants_help(argc, argv)) {
                printf("berthctl snapshots rm CHAIN-ID...\n\n"
                       "Remove snapshots. Refused for snapshots an image, a mounted view or a running pull uses,\n"
                       "and for parents of snapshots not removed too.\n");
                return 0;
        }
        if (argc < 2) {
                fprintf(stderr, "berthctl: snapshots rm: expected at least one snapshot id\n");
                return -EINVAL;
        }
        r = broker_connect(&bus);
        if (r < 0)
                return r;
        /* One call for all: parents and children can go together. */
        r = broker_new_call(bus, &m, "RemoveSnapshots");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, argv + 1);
        if (r >= 0)
                r = sd_bus_message_append(m, "t", UINT64_C(0));
        if (r < 0)
                return report_bus_error("snapshots rm", NULL, r);
        r = broker_send(bus, m, broker_default_timeout(), &reply, "snapshots rm");
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "t", &freed);
        if (r < 0)
                return report_bus_error("snapshots rm", NULL, r);
        if (!arg.quiet) {
                for (int i = 1; i < argc; i++)
                        printf("%s\n", argv[i]);
                format_bytes(sz, sizeof(sz), freed);
                printf("freed %s\n", sz);
        }
        return 0;
}

const Verb snapshots_verbs[] = {
        { "ls", "[--json]", "List snapshots", verb_ls },
        { "info", "CHAIN-ID", "Show a snapshot as JSON", verb_info },
        { "rm", "CHAIN-ID...", "Remove snapshots", verb_rm },
        {}
};
