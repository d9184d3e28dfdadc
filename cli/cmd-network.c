/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* berthctl network create|ls|inspect|rm: CNI bridge networks (conflists in /etc/berth/net.d/, owned by
 * the supervisor). Creating and removing one is admin-only (org.berth.network-manage). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <getopt.h>
#include <json-glib/json-glib.h>
#include <stdio.h>

#include "berthctl.h"
#include "bus-names.h"
#include "container-cli.h"
#include "container-network.h"
#include "bus-util.h"
#include "output.h"
#include "table.h"
#include "polkit-agent.h"

static int verb_create(int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "subnet", required_argument, NULL, 's' },
                { "gateway", required_argument, NULL, 'g' },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *subnet = "", *gateway = "", *json;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        printf("berthctl network create [--subnet CIDR] [--gateway IP] NAME\n\n"
                               "Create a bridge network. Without --subnet, the first of 10.88.0.0/16 and "
                               "10.89.N.0/24\nthat no host route and no other network overlaps.\n");
                        return 0;
                case 's':
                        subnet = optarg;
                        break;
                case 'g':
                        gateway = optarg;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind != argc - 1) {
                fprintf(stderr, "berthctl: network create: expected one network name\n");
                return -EINVAL;
        }
        r = broker_connect_call(&bus, "CreateNetwork", &reply, "network create", "ssst", argv[optind],
                                subnet, gateway, UINT64_C(0));
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "s", &json);
        if (r < 0)
                return report_bus_error("network create", NULL, r);
        if (arg.json) {
                print_json_string(json);
                return 0;
        }
        if (!arg.quiet)
                printf("%s\n", argv[optind]);
        return 0;
}

static const TableColumn network_columns[] = {
        { "NAME", -20, "name" },       { "BRIDGE", -10, "bridge" },        { "SUBNET", -18, "subnet" },
        { "GATEWAY", -15, "gateway" }, { "CONTAINERS", 10, "containers" },
};

static int verb_ls(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *table = NULL;
        TableMode mode;
        int r;

        r = table_parse_args(
                "network ls",
                "berthctl network ls [--json] [-q]\n\nList networks: NAME BRIDGE SUBNET GATEWAY "
                "CONTAINERS.\n",
                argc, argv, NULL, 0, &mode);
        if (r != 0)
                return r < 0 ? r : 0;
        r = broker_connect_call(&bus, "ListNetworks", &reply, "network ls", "t", UINT64_C(0));
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(ssssu)");
        if (r < 0)
                return report_bus_error("network ls", NULL, r);
        table = table_new(network_columns, ELEMENTSOF(network_columns), mode);
        for (;;) {
                const char *name, *bridge, *subnet, *gateway;
                uint32_t n;

                r = sd_bus_message_read(reply, "(ssssu)", &name, &bridge, &subnet, &gateway, &n);
                if (r < 0)
                        return report_bus_error("network ls", NULL, r);
                if (r == 0)
                        break;
                table_add_string(table, name);
                table_add_string(table, bridge);
                table_add_string(table, subnet);
                table_add_string(table, gateway);
                table_add_uint(table, n);
        }
        table_print(table);
        return 0;
}

static int verb_inspect(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        g_autoptr(JsonArray) all = json_array_new();
        g_autoptr(JsonNode) root = json_node_new(JSON_NODE_ARRAY);
        g_autofree char *text = NULL;
        int r;

        if (wants_help(argc, argv)) {
                printf("berthctl network inspect NAME...\n\nShow networks as JSON: subnet, gateway, bridge, "
                       "plugins,\nattached containers with their addresses and ports, the conflist.\n");
                return 0;
        }
        if (argc < 2) {
                fprintf(stderr, "berthctl: network inspect: expected at least one network name\n");
                return -EINVAL;
        }
        r = broker_connect(&bus);
        if (r < 0)
                return r;
        for (int i = 1; i < argc; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                const char *json;
                JsonNode *n;

                r = broker_call(bus, "InspectNetwork", &reply, "network inspect", "s", argv[i]);
                if (r < 0)
                        return r;
                r = sd_bus_message_read(reply, "s", &json);
                if (r < 0)
                        return report_bus_error("network inspect", NULL, r);
                n = json_from_string(json, NULL);
                if (n)
                        json_array_add_element(all, n);
        }
        json_node_set_array(root, all);
        text = json_to_string(root, true);
        printf("%s\n", text);
        return 0;
}

static int verb_rm(int argc, char *argv[]) {
        if (wants_help(argc, argv)) {
                printf("berthctl network rm NAME...\n\nRemove networks (refused while a container is "
                       "attached).\n");
                return 0;
        }
        if (argc < 2) {
                fprintf(stderr, "berthctl: network rm: expected at least one network name\n");
                return -EINVAL;
        }
        return broker_call_each("RemoveNetwork", "network rm", argc - 1, argv + 1);
}

const Verb network_verbs[] = {
        { "create", "[--subnet CIDR] [--gateway IP] NAME", "Create a bridge network (admin)", verb_create },
        { "ls", "", "List networks", verb_ls },
        { "inspect", "NAME...", "Show networks as JSON", verb_inspect },
        { "rm", "NAME...", "Remove networks (admin; refused while in use)", verb_rm },
        {},
};

JsonNode *container_network_json(sd_bus *bus, const char *path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *json;

        if (polkit_agent_call_method(bus, BERTH_BROKER_NAME, path, BERTH_BROKER_CONTAINER_IFACE,
                                     "GetNetwork", NULL, &reply, "t", UINT64_C(0)) < 0 ||
            sd_bus_message_read(reply, "s", &json) < 0)
                return json_node_new(JSON_NODE_NULL);
        return json_from_string(json, NULL) ?: json_node_new(JSON_NODE_NULL);
}
