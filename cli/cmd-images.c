/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <getopt.h>
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <stdio.h>

#include "berth-flags.h"
#include "berthctl.h"
#include "bus-names.h"
#include "bus-util.h"
#include "output.h"
#include "table.h"
#include "transfer-view.h"

/* berthctl images pull|unpack|ls|inspect|tag|rm|prune */

static int pull_help(void) {
        printf("berthctl images pull [--platform P | --all-platforms] [--no-unpack] [--quiet] REF\n\n"
               "Pull an image from its registry and unpack it into snapshots (layers are unpacked while\n"
               "others still download; with --all-platforms only this machine's platform is unpacked).\n"
               "Shows one row per blob and the total on a terminal, one line per blob state change\n"
               "otherwise, and ends with 'REF: DIGEST'. Ctrl-C cancels.\n");
        return 0;
}

static int verb_pull(int argc, char *argv[]) {
        enum { ARG_PLATFORM = 0x100, ARG_ALL_PLATFORMS, ARG_NO_UNPACK };
        static const struct option options[] = { { "help", no_argument, NULL, 'h' },
                                                 { "platform", required_argument, NULL, ARG_PLATFORM },
                                                 { "all-platforms", no_argument, NULL, ARG_ALL_PLATFORMS },
                                                 { "no-unpack", no_argument, NULL, ARG_NO_UNPACK },
                                                 { "quiet", no_argument, NULL, 'q' },
                                                 {} };
        const char *platform = "";
        uint64_t flags = 0;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+hq", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        return pull_help();
                case ARG_PLATFORM:
                        platform = optarg;
                        break;
                case ARG_ALL_PLATFORMS:
                        flags |= PULL_FLAG_ALL_PLATFORMS;
                        break;
                case ARG_NO_UNPACK:
                        flags |= PULL_FLAG_NO_UNPACK;
                        break;
                case 'q':
                        arg.quiet = true;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind + 1 != argc) {
                fprintf(stderr, "berthctl: images pull: expected exactly one reference (see --help)\n");
                return -EINVAL;
        }
        if (!isempty(platform) && (flags & PULL_FLAG_ALL_PLATFORMS)) {
                fprintf(stderr,
                        "berthctl: images pull: --platform and --all-platforms exclude each other\n");
                return -EINVAL;
        }

        return transfer_view_run("images pull", "PullImage", argv[optind], platform, flags, false);
}

/* ---- unpack ----------------------------------------------------------------------------------------- */

static int unpack_help(void) {
        printf("berthctl images unpack [--platform P] [--quiet] REF\n\n"
               "Unpack an image already in the content store (pulled with --no-unpack, or imported with\n"
               "--no-unpack) into snapshots, for this machine's platform or P. Layers already unpacked are\n"
               "skipped. Shows progress like images pull and ends with 'REF: DIGEST'. Ctrl-C cancels.\n");
        return 0;
}

static int verb_unpack(int argc, char *argv[]) {
        enum { ARG_PLATFORM = 0x100 };
        static const struct option options[] = { { "help", no_argument, NULL, 'h' },
                                                 { "platform", required_argument, NULL, ARG_PLATFORM },
                                                 { "quiet", no_argument, NULL, 'q' },
                                                 {} };
        const char *platform = "";
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+hq", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        return unpack_help();
                case ARG_PLATFORM:
                        platform = optarg;
                        break;
                case 'q':
                        arg.quiet = true;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind + 1 != argc) {
                fprintf(stderr, "berthctl: images unpack: expected exactly one reference (see --help)\n");
                return -EINVAL;
        }
        return transfer_view_run("images unpack", "UnpackImage", argv[optind], platform, 0, false);
}

/* ---- ls --------------------------------------------------------------------------------------------- */

static const TableColumn images_columns[] = {
        { "REF", -50, "reference" }, { "DIGEST", -71, "digest" },    { NULL, 0, "media_type" },
        { "SIZE", -10, "size" },     { "PLATFORM", 0, "platforms" },
};

static int verb_ls(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *table = NULL;
        TableMode mode;
        int r;

        r = table_parse_args("images ls",
                             "berthctl images ls [--json] [-q]\n\nList images: REF DIGEST SIZE PLATFORM.\n",
                             argc, argv, NULL, 0, &mode);
        if (r != 0)
                return r < 0 ? r : 0;
        r = broker_connect_call(&bus, "ListImages", &reply, "images ls", NULL);
        if (r < 0)
                return r;

        r = sd_bus_message_enter_container(reply, 'a', "(sssts)");
        if (r < 0)
                return report_bus_error("images ls", NULL, r);
        table = table_new(images_columns, ELEMENTSOF(images_columns), mode);
        for (;;) {
                const char *name, *digest, *media_type, *platforms;
                g_auto(GStrv) l = NULL;
                uint64_t size;
                JsonArray *a;
                JsonNode *n;

                r = sd_bus_message_read(reply, "(sssts)", &name, &digest, &media_type, &size, &platforms);
                if (r < 0)
                        return report_bus_error("images ls", NULL, r);
                if (r == 0)
                        break;
                table_add_string(table, name);
                table_add_string(table, digest);
                table_add_string(table, media_type);
                table_add_bytes(table, size);
                /* The broker sends "linux/amd64,linux/arm64": shown as is, a list in JSON. */
                l = g_strsplit(platforms, ",", -1);
                a = json_array_new();
                for (char **p = l; p && *p; p++)
                        if (**p)
                                json_array_add_string_element(a, *p);
                n = json_node_new(JSON_NODE_ARRAY);
                json_node_take_array(n, a);
                table_add_cell(table, platforms, n);
        }
        table_print(table);
        return 0;
}

/* ---- inspect / tag / rm / prune --------------------------------------------------------------------- */

static int verb_inspect(int argc, char *argv[]) {
        if (wants_help(argc, argv)) {
                printf("berthctl images inspect REF\n\nShow an image's record as JSON.\n");
                return 0;
        }
        if (argc != 2) {
                fprintf(stderr, "berthctl: images inspect: expected exactly one reference\n");
                return -EINVAL;
        }
        return broker_call_print_json("InspectImage", "images inspect", argv[1]);
}

static int verb_tag(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;

        if (wants_help(argc, argv)) {
                printf("berthctl images tag SOURCE TARGET\n\nGive an existing image a new name.\n");
                return 0;
        }
        if (argc != 3) {
                fprintf(stderr, "berthctl: images tag: expected SOURCE and TARGET\n");
                return -EINVAL;
        }
        return broker_connect_call(&bus, "TagImage", NULL, "images tag", "ss", argv[1], argv[2]);
}

static int verb_rm(int argc, char *argv[]) {
        if (wants_help(argc, argv)) {
                printf("berthctl images rm REF...\n\nRemove image names; their blobs stay until 'content "
                       "gc'.\n");
                return 0;
        }
        if (argc < 2) {
                fprintf(stderr, "berthctl: images rm: expected at least one reference\n");
                return -EINVAL;
        }
        return broker_call_each("RemoveImage", "images rm", argc - 1, argv + 1);
}

static int verb_prune(int argc, char *argv[]) {
        if (wants_help(argc, argv)) {
                printf("berthctl images prune\n\nSame as 'berthctl content gc'.\n");
                return 0;
        }
        return content_gc("images prune");
}

const Verb images_verbs[] = {
        { "pull", "[--platform P] REF", "Pull an image from a registry", verb_pull },
        { "unpack", "[--platform P] REF", "Unpack an image in the content store into snapshots",
          verb_unpack },
        { "ls", "[--json] [-q]", "List images", verb_ls },
        { "inspect", "REF", "Show an image's record as JSON", verb_inspect },
        { "tag", "SOURCE TARGET", "Give an image a new name", verb_tag },
        { "rm", "REF...", "Remove image names", verb_rm },
        { "prune", "", "Remove unreferenced blobs and snapshots (= content gc)", verb_prune },
        { "mount", "REF DIR", "Mount an unpacked image read-only on DIR", images_verb_mount },
        { "unmount", "DIR", "Unmount an image view", images_verb_unmount },
        { "usage", "[REF]", "Disk usage of images: blobs, snapshots, shared, unique", images_verb_usage },
        { "import", "[--name REF] FILE", "Import an OCI layout or docker save archive", images_verb_import },
        { "export", "REF FILE", "Write an image as an OCI layout archive", images_verb_export },
        {}
};
