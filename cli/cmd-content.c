/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <time.h>

#include "berthctl.h"
#include "bus-util.h"
#include "output.h"
#include "table.h"

/* berthctl content ls|gc */

static const TableColumn content_columns[] = {
        { "DIGEST", -71, "digest" },
        { "SIZE", -10, "size" },
        { "MODIFIED", -20, "mtime_usec" },
        { "REFERENCES", 0, "references" },
};

static int verb_ls(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *table = NULL;
        TableMode mode;
        int r;

        r = table_parse_args("content ls",
                             "berthctl content ls [--json] [-q]\n\nList the blobs of the content store and "
                             "the images using them.\n",
                             argc, argv, NULL, 0, &mode);
        if (r != 0)
                return r < 0 ? r : 0;
        r = broker_connect_call(&bus, "ListContent", &reply, "content ls", NULL);
        if (r < 0)
                return r;

        r = sd_bus_message_enter_container(reply, 'a', "(sttas)");
        if (r < 0)
                return report_bus_error("content ls", NULL, r);
        table = table_new(content_columns, ELEMENTSOF(content_columns), mode);
        for (;;) {
                g_auto(GStrv) refs = NULL;
                const char *digest;
                uint64_t size, mtime;
                char when[32] = "-";
                time_t t;
                struct tm tm;
                JsonNode *n;

                r = sd_bus_message_enter_container(reply, 'r', "sttas");
                if (r < 0)
                        return report_bus_error("content ls", NULL, r);
                if (r == 0)
                        break;
                r = sd_bus_message_read(reply, "stt", &digest, &size, &mtime);
                if (r >= 0)
                        r = sd_bus_message_read_strv(reply, &refs);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return report_bus_error("content ls", NULL, r);

                table_add_string(table, digest);
                table_add_bytes(table, size);
                /* Local time on a terminal, microseconds in JSON. */
                t = (time_t) (mtime / 1000000);
                if (localtime_r(&t, &tm))
                        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
                n = json_node_new(JSON_NODE_VALUE);
                json_node_set_int(n, (gint64) mtime);
                table_add_cell(table, when, n);
                table_add_strv(table, refs);
        }
        table_print(table);
        return 0;
}

int content_gc(const char *what) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint64_t freed;
        uint32_t removed;
        char sz[32];
        int r;

        r = broker_connect_call(&bus, "PruneContent", &reply, what, "t", UINT64_C(0));
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "tu", &freed, &removed);
        if (r < 0)
                return report_bus_error(what, NULL, r);
        format_bytes(sz, sizeof(sz), freed);
        if (arg.json)
                printf("{\"bytes_freed\": %" PRIu64 ", \"blobs_removed\": %" PRIu32 "}\n", freed, removed);
        else if (!arg.quiet)
                printf("Removed %" PRIu32 " blob(s), freed %s.\n", removed, sz);
        return 0;
}

static int verb_gc(int argc, char *argv[]) {
        if (wants_help(argc, argv)) {
                printf("berthctl content gc\n\nRemove blobs no image references and stale partial "
                       "downloads.\n");
                return 0;
        }
        if (argc != 1) {
                fprintf(stderr, "berthctl: content gc: takes no arguments\n");
                return -EINVAL;
        }
        return content_gc("content gc");
}

const Verb content_verbs[] = { { "ls", "[--json]", "List blobs and the images using them", verb_ls },
                               { "gc", "", "Remove unreferenced blobs and stale downloads", verb_gc },
                               {} };
