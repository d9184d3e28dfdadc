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
#include "table.h"

/* berthctl snapshots ls|info|rm: the committed layer snapshots (named by chain id, as containerd's
 * overlayfs snapshotter names its committed snapshots). */

static const char *short_id(const char *id, char buf[static 20]) {
        const char *colon = strchr(id, ':');

        snprintf(buf, 20, "%.12s", colon ? colon + 1 : id);
        return buf;
}

static const TableColumn snapshots_columns[] = {
        { "CHAIN-ID", -71, "chain_id" }, { "PARENT", -12, "parent" }, { NULL, 0, "diff_id" },
        { "SIZE", 10, "size" },          { "ENTRIES", 8, "entries" }, { "USED-BY", 0, "images" },
};

static int verb_ls(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *table = NULL;
        TableMode mode;
        int r;

        r = table_parse_args("snapshots ls",
                             "berthctl snapshots ls [--json] [-q]\n\nList snapshots: CHAIN-ID PARENT SIZE "
                             "ENTRIES USED-BY.\n",
                             argc, argv, NULL, 0, &mode);
        if (r != 0)
                return r < 0 ? r : 0;
        r = broker_connect_call(&bus, "ListSnapshots", &reply, "snapshots ls", NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(ssstuas)");
        if (r < 0)
                return report_bus_error("snapshots ls", NULL, r);
        table = table_new(snapshots_columns, ELEMENTSOF(snapshots_columns), mode);
        for (;;) {
                g_auto(GStrv) users = NULL;
                const char *id, *parent, *diff_id;
                uint64_t size;
                uint32_t entries;
                JsonNode *n;
                char p[20];

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
                table_add_string(table, id);
                /* The parent's short id on a terminal, the whole one in JSON. */
                n = json_node_new(JSON_NODE_VALUE);
                json_node_set_string(n, parent);
                table_add_cell(table, isempty(parent) ? "-" : short_id(parent, p), n);
                table_add_string(table, diff_id);
                table_add_bytes(table, size);
                table_add_uint(table, entries);
                table_add_strv(table, users);
        }
        table_print(table);
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
                       "Remove snapshots. Refused for snapshots an image, a mounted view or a running pull "
                       "uses,\n"
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

const Verb snapshots_verbs[] = { { "ls", "[--json]", "List snapshots", verb_ls },
                                 { "info", "CHAIN-ID", "Show a snapshot as JSON", verb_info },
                                 { "rm", "CHAIN-ID...", "Remove snapshots", verb_rm },
                                 {} };
