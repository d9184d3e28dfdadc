/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <json-glib/json-glib.h>
#include <stdio.h>

#include "berthctl.h"
#include "bus-util.h"
#include "output.h"

typedef struct ServiceRow {
        const char *name;
        const char *bus_name;
        const char *state;
        const char *version;
        const char *error;
        uint32_t pid, uid;
        uint64_t rss;
} ServiceRow;

/* Reads one a{sv} status dict; unknown keys are skipped so newer services stay readable. */
static int read_status(sd_bus_message *m, ServiceRow *row) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                if (streq(key, "State"))
                        r = sd_bus_message_read(m, "v", "s", &row->state);
                else if (streq(key, "Version"))
                        r = sd_bus_message_read(m, "v", "s", &row->version);
                else if (streq(key, "Error"))
                        r = sd_bus_message_read(m, "v", "s", &row->error);
                else if (streq(key, "PID"))
                        r = sd_bus_message_read(m, "v", "u", &row->pid);
                else if (streq(key, "UID"))
                        r = sd_bus_message_read(m, "v", "u", &row->uid);
                else if (streq(key, "MemoryRSS"))
                        r = sd_bus_message_read(m, "v", "t", &row->rss);
                else
                        r = sd_bus_message_skip(m, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static void print_json(const char *version, const ServiceRow *rows, size_t n) {
        g_autoptr(JsonBuilder) b = json_builder_new();

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "version");
        json_builder_add_string_value(b, version);
        json_builder_set_member_name(b, "services");
        json_builder_begin_array(b);
        for (size_t i = 0; i < n; i++) {
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "name");
                json_builder_add_string_value(b, rows[i].name);
                json_builder_set_member_name(b, "bus_name");
                json_builder_add_string_value(b, rows[i].bus_name);
                json_builder_set_member_name(b, "state");
                json_builder_add_string_value(b, rows[i].state ?: "unknown");
                if (rows[i].version) {
                        json_builder_set_member_name(b, "version");
                        json_builder_add_string_value(b, rows[i].version);
                }
                if (rows[i].pid > 0) {
                        json_builder_set_member_name(b, "pid");
                        json_builder_add_int_value(b, rows[i].pid);
                        json_builder_set_member_name(b, "uid");
                        json_builder_add_int_value(b, rows[i].uid);
                        json_builder_set_member_name(b, "memory_rss");
                        json_builder_add_int_value(b, (int64_t) rows[i].rss);
                }
                if (rows[i].error) {
                        json_builder_set_member_name(b, "error");
                        json_builder_add_string_value(b, rows[i].error);
                }
                json_builder_end_object(b);
        }
        json_builder_end_array(b);
        json_builder_end_object(b);
        print_json_builder(b);
}

static void print_table(const char *version, const ServiceRow *rows, size_t n) {
        printf("berth %s\n\n", version);
        printf("%-11s %-12s %-9s %-8s %-6s %s\n", "SERVICE", "STATE", "VERSION", "PID", "UID", "MEMORY");
        for (size_t i = 0; i < n; i++) {
                char mem[32] = "-", pid[16] = "-", uid[16] = "-";

                if (rows[i].pid > 0) {
                        format_bytes(mem, sizeof(mem), rows[i].rss);
                        snprintf(pid, sizeof(pid), "%u", rows[i].pid);
                        snprintf(uid, sizeof(uid), "%u", rows[i].uid);
                }
                printf("%-11s %-12s %-9s %-8s %-6s %s\n", rows[i].name, rows[i].state ?: "unknown",
                       rows[i].version ?: "-", pid, uid, mem);
                if (rows[i].error)
                        printf("            error: %s\n", rows[i].error);
        }
}

int cmd_info(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        ServiceRow rows[8] = {};
        const char *version;
        size_t n = 0;
        bool all_running = true;
        int r;

        if (wants_help(argc, argv)) {
                printf("berthctl info [--json]\n\n"
                       "Show the version of berth and the state of its four services. The broker asks\n"
                       "the fetcher, unpacker and supervisor itself, so success proves the whole chain.\n"
                       "Exits non-zero when a service is not running.\n");
                return 0;
        }
        r = parse_json_only_args("info", argc, argv);
        if (r < 0)
                return r;

        r = broker_connect_call(&bus, "GetInfo", &reply, "info", NULL);
        if (r < 0)
                return r;

        r = sd_bus_message_read(reply, "s", &version);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(ssa{sv})");
        while (r >= 0 && n < ELEMENTSOF(rows)) {
                r = sd_bus_message_enter_container(reply, 'r', "ssa{sv}");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(reply, "ss", &rows[n].name, &rows[n].bus_name);
                if (r >= 0)
                        r = read_status(reply, &rows[n]);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (!streq_ptr(rows[n].state, "running"))
                        all_running = false;
                n++;
        }
        if (r < 0)
                return report_bus_error("info", NULL, r);

        if (arg.json)
                print_json(version, rows, n);
        else
                print_table(version, rows, n);
        return all_running ? 0 : -EHOSTDOWN;
}
