/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "berthctl.h"
#include "bus-util.h"
#include "escape.h"
#include "output.h"

static void print_json_node(JsonNode *root) {
        g_autoptr(JsonGenerator) gen = json_generator_new();
        g_autofree char *text = NULL;

        json_generator_set_root(gen, root);
        json_generator_set_pretty(gen, true);
        text = json_generator_to_data(gen, NULL);
        puts(text);
}

void print_json_builder(JsonBuilder *b) {
        g_autoptr(JsonNode) root = json_builder_get_root(b);

        print_json_node(root);
}

void print_json_string(const char *json) {
        g_autoptr(JsonParser) parser = json_parser_new();

        if (!json_parser_load_from_data(parser, json, -1, NULL)) {
                /* The broker's text, not JSON after all: shown, but never raw on a terminal. */
                _cleanup_free_ char *shown = escape_untrusted(json, 0, 0);
                puts(strna(shown));
                return;
        }
        print_json_node(json_parser_get_root(parser));
}

int parse_json_only_args(const char *what, int argc, char *argv[]) {
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--json"))
                        arg.json = true;
                else {
                        fprintf(stderr, "berthctl: %s: unknown argument '%s'\n", what, argv[i]);
                        return -EINVAL;
                }
        }
        return 0;
}

int broker_call_print_json(const char *member, const char *what, const char *id) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *json;
        int r;

        r = broker_connect_call(&bus, member, &reply, what, "s", id);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "s", &json);
        if (r < 0)
                return report_bus_error(what, NULL, r);
        print_json_string(json);
        return 0;
}

int broker_call_each(const char *member, const char *what, int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r, ret = 0;

        r = broker_connect(&bus);
        if (r < 0)
                return r;
        for (int i = 0; i < argc; i++) {
                r = broker_call(bus, member, NULL, what, "st", argv[i], UINT64_C(0));
                if (r < 0)
                        ret = r;
                else if (!arg.quiet)
                        printf("%s\n", argv[i]);
        }
        return ret;
}
