/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <time.h>

#include "berthctl.h"
#include "bus-util.h"
#include "output.h"

/* berthctl content ls|gc */

static int verb_ls(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        int r;

        if (wants_help(argc, argv)) {
                printf("berthctl content ls [--json]\n\nList the blobs of the content store and the images using them.\n");
                return 0;
        }
        r = parse_json_only_args("content ls", argc, argv);
        if (r < 0)
                return r;
        r = broker_connect_call(&bus, "ListContent", &reply, "content ls", NULL);
        if (r < 0)
                return r;

        r = sd_bus_message_enter_container(reply, 'a', "(sttas)");
        if (r < 0)
                return report_bus_error("content ls", NULL, r);
        if (arg.json)
                json_builder_begin_array(b);
        else
                printf("%-71s %-10s %-20s %s\n", "DIGEST", "SIZE", "MODIFIED", "REFERENCES");
        for (;;) {
                g_auto(GStrv) refs = NULL;
                const char *digest;
                uint64_t size, mtime;

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

                if (arg.json) {
                        json_builder_begin_object(b);
                        json_builder_set_member_name(b, "digest");
                        json_builder_add_string_value(b, digest);
                        json_builder_set_member_name(b, "size");
                        json_builder_add_int_value(b, (gint64) size);
                        json_builder_set_member_name(b, "mtime_usec");
                        json_builder_add_int_value(b, (gint64) mtime);
                        json_builder_set_member_name(b, "references");
                        json_builder_begin_array(b);
                        for (char **p = refs; p && *p; p++)
                                json_builder_add_string_value(b, *p);
                        json_builder_end_array(b);
                        json_builder_end_object(b);
                } else {
                        g_autofree char *joined = refs && refs[0] ? g_strjoinv(",", refs) : g_strdup("-");
                        char sz[32], when[32] = "-";
                        time_t t = (time_t) (mtime / 1000000);
                        struct tm tm;

                        format_bytes(sz, sizeof(sz), size);
                        if (localtime_r(&t, &tm))
                                strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
                        printf("%-71s %-10s %-20s %s\n", digest, sz, when, joined);
                }
        }
        if (arg.json) {
                json_builder_end_array(b);
                print_json_builder(b);
        }
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
                printf("berthctl content gc\n\nRemove blobs no image references and stale partial downloads.\n");
                return 0;
        }
        if (argc != 1) {
                fprintf(stderr, "berthctl: content gc: takes no arguments\n");
                return -EINVAL;
        }
        return content_gc("content gc");
}

const Verb content_verbs[] = {
        { "ls", "[--json]", "List blobs and the images using them", verb_ls },
        { "gc", "", "Remove unreferenced blobs and stale downloads", verb_gc },
        {}
};
