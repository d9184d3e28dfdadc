/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <getopt.h>
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

#include "berth-flags.h"
#include "berthctl.h"
#include "bus-names.h"
#include "bus-util.h"
#include "oci-types.h"
#include "output.h"

/* berthctl images pull|unpack|ls|inspect|tag|rm|prune */

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* ---- pull ------------------------------------------------------------------------------------------- */

typedef struct Row {
        char *digest;
        char *state;
        uint64_t done, total;
} Row;

typedef struct PullView {
        sd_bus *bus;
        sd_event *event;
        char *path;       /* our transfer */
        char *broker;     /* unique name of the broker that answered PullImage */
        bool tty, quiet;
        unsigned lines_drawn;
        GPtrArray *rows;  /* Row* */
        GHashTable *printed; /* digest → last printed state (plain mode) */
        uint64_t done, total;
        uint64_t started, last_draw;
        bool cancel_sent;
        bool finished;
        const char *platform;     /* as asked, NULL = default */
        char *default_platform;   /* this machine's, "linux/amd64" */
        char *image_digest;       /* ImageDigest once resolved, for the unpacking line */
        int result;       /* 0 done, <0 failed/cancelled */
        char *error;
        char *reference;
        char *digest;
        char *state;      /* the transfer's State, from PropertiesChanged */
        uint64_t unpack_started;
} PullView;

static void row_free(gpointer p) {
        Row *r = p;

        free(r->digest);
        free(r->state);
        free(r);
}

static const char *short_digest(const char *d) {
        const char *colon = strchr(d, ':');
        static char buf[32];

        snprintf(buf, sizeof(buf), "%.12s", colon ? colon + 1 : d);
        return buf;
}

static void draw_bar(char *buf, size_t size, uint64_t done, uint64_t total) {
        size_t width = size - 1, filled = total > 0 ? (size_t) ((double) done / (double) total * (double) width) : 0;

        if (filled > width)
                filled = width;
        for (size_t i = 0; i < width; i++)
                buf[i] = i < filled ? '#' : '.';
        buf[width] = 0;
}

static void redraw(PullView *v, bool force) {
        uint64_t now = now_usec();
        char d[32], t[32], speed[32], bar[26];
        double secs;

        if (!force && now - v->last_draw < 100000)
                return;
        v->last_draw = now;
        if (v->lines_drawn > 0)
                printf("\033[%uA", v->lines_drawn);
        for (guint i = 0; i < v->rows->len; i++) {
                Row *r = v->rows->pdata[i];

                format_bytes(d, sizeof(d), r->done);
                format_bytes(t, sizeof(t), r->total);
                draw_bar(bar, sizeof(bar), r->done, r->total);
                printf("\033[2K%-12s  %-11s [%s] %10s / %-10s\n", short_digest(r->digest), r->state, bar, d, t);
        }
        secs = (double) (now - v->started) / 1e6;
        format_bytes(d, sizeof(d), v->done);
        format_bytes(t, sizeof(t), v->total);
        format_bytes(speed, sizeof(speed), secs > 0.1 ? (uint64_t) ((double) v->done / secs) : 0);
        printf("\033[2Ktotal: %s / %s  (%s/s, %.1fs)%s%s\n", d, t, speed, secs, v->state ? "  " : "",
               v->state ?: "");
        fflush(stdout);
        v->lines_drawn = v->rows->len + 1;
}

static void print_plain_changes(PullView *v) {
        for (guint i = 0; i < v->rows->len; i++) {
                Row *r = v->rows->pdata[i];
                const char *last = g_hash_table_lookup(v->printed, r->digest);
                char t[32];

                if (streq_ptr(last, r->state))
                        continue;
                format_bytes(t, sizeof(t), r->total);
                printf("%s %s %s\n", r->digest, r->state, t);
                g_hash_table_replace(v->printed, g_strdup(r->digest), g_strdup(r->state));
        }
        fflush(stdout);
}

static int read_layers(sd_bus_message *m, PullView *v) {
        int r;

        g_ptr_array_set_size(v->rows, 0);
        r = sd_bus_message_enter_container(m, 'a', "(ssstt)");
        if (r < 0)
                return r;
        for (;;) {
                const char *digest, *media_type, *state;
                uint64_t done, total;
                Row *row;

                r = sd_bus_message_read(m, "(ssstt)", &digest, &media_type, &state, &done, &total);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                row = calloc(1, sizeof(*row));
                if (!row)
                        return -ENOMEM;
                row->digest = strdup(digest);
                row->state = strdup(state);
                row->done = done;
                row->total = total;
                g_ptr_array_add(v->rows, row);
                if (!row->digest || !row->state)
                        return -ENOMEM;
        }
        return sd_bus_message_exit_container(m);
}

static bool from_our_transfer(PullView *v, sd_bus_message *m) {
        /* Anybody may broadcast a signal on that path; only the broker's count. */
        return v->path && v->broker && streq_ptr(sd_bus_message_get_sender(m), v->broker) &&
               streq_ptr(sd_bus_message_get_path(m), v->path);
}

static void show(PullView *v, bool force) {
        if (v->quiet)
                return;
        if (v->tty)
                redraw(v, force);
        else
                print_plain_changes(v);
}

static int on_transfer_signal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        PullView *v = userdata;
        const char *result, *error;
        int r;

        if (!from_our_transfer(v, m))
                return 0;

        if (sd_bus_message_is_signal(m, BERTH_BROKER_TRANSFER_IFACE, "Progress")) {
                r = sd_bus_message_read(m, "tt", &v->done, &v->total);
                if (r >= 0)
                        r = read_layers(m, v);
                if (r >= 0)
                        show(v, false);
                return 0;
        }
        if (!sd_bus_message_is_signal(m, BERTH_BROKER_TRANSFER_IFACE, "Finished"))
                return 0;

        r = sd_bus_message_read(m, "ss", &result, &error);
        if (r < 0)
                return 0;
        v->finished = true;
        if (streq(result, "done")) {
                v->result = 0;
                show(v, true);
                /* The transfer stays on the bus for a minute after it finished: read what we print from
                 * it now (leaving the event loop closes the connection). */
                r = sd_bus_get_property_string(v->bus, BERTH_BROKER_NAME, v->path, BERTH_BROKER_TRANSFER_IFACE,
                                               "Reference", NULL, &v->reference);
                if (r >= 0)
                        r = sd_bus_get_property_string(v->bus, BERTH_BROKER_NAME, v->path,
                                                       BERTH_BROKER_TRANSFER_IFACE, "ImageDigest", NULL, &v->digest);
                if (r < 0) {
                        v->result = r;
                        v->error = strdup(strerror(-r));
                }
        } else {
                v->result = streq(result, "cancelled") ? -ECANCELED : -EIO;
                v->error = strdup(!isempty(error) ? error : result);
        }
        return sd_event_exit(v->event, 0);
}

/* The overall state: ctr prints "unpacking linux/amd64 sha256:…" once only unpacks remain, then "done". */
static int on_transfer_properties(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        PullView *v = userdata;
        const char *iface, *name, *value;
        bool unpacking = false;
        int r;

        if (!from_our_transfer(v, m))
                return 0;
        r = sd_bus_message_read(m, "s", &iface);
        if (r < 0 || !streq(iface, BERTH_BROKER_TRANSFER_IFACE))
                return 0;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        while (r > 0) {
                r = sd_bus_message_enter_container(m, 'e', "sv");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        break;
                if (streq(name, "State") || streq(name, "ImageDigest")) {
                        char **slot = streq(name, "State") ? &v->state : &v->image_digest;

                        r = sd_bus_message_read(m, "v", "s", &value);
                        if (r < 0)
                                break;
                        if (!streq_ptr(*slot, value)) {
                                free(*slot);
                                *slot = strdup(value);
                                unpacking = unpacking || (slot == &v->state && streq(value, "unpacking"));
                        }
                } else
                        r = sd_bus_message_skip(m, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        if (unpacking) {
                v->unpack_started = now_usec();
                if (!v->quiet && !v->tty)
                        printf("unpacking %s %s...\n", v->platform ?: strna(v->default_platform),
                               strna(v->image_digest));
                show(v, true);
        }
        return 0;
}

/* The transfer lives in the broker: if the broker goes away, so does every signal we wait for. */
static int on_broker_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        PullView *v = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || !v->broker ||
            !streq(old_owner, v->broker) || v->finished)
                return 0;
        v->finished = true;
        v->result = -ECONNRESET;
        free(v->error);
        v->error = strdup("the berth broker exited during the pull; run the pull again to resume it");
        return sd_event_exit(v->event, 0);
}

static int on_sigint(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        PullView *v = userdata;
        int r;

        if (v->cancel_sent || !v->path)
                return sd_event_exit(v->event, 0); /* second Ctrl-C: stop waiting */
        v->cancel_sent = true;
        r = sd_bus_call_method_async(v->bus, NULL, BERTH_BROKER_NAME, v->path, BERTH_BROKER_TRANSFER_IFACE, "Cancel",
                                     NULL, NULL, "");
        if (r < 0)
                return sd_event_exit(v->event, 0);
        return 0;
}

static int pull_help(void) {
        printf("berthctl images pull [--platform P | --all-platforms] [--no-unpack] [--quiet] REF\n\n"
               "Pull an image from its registry and unpack it into snapshots (layers are unpacked while\n"
               "others still download; with --all-platforms only this machine's platform is unpacked).\n"
               "Shows one row per blob and the total on a terminal, one line per blob state change\n"
               "otherwise, and ends with 'REF: DIGEST'. Ctrl-C cancels.\n");
        return 0;
}

/* Calls method ("sst" reference, platform, flags → "o" transfer: PullImage or UnpackImage) and follows
 * the transfer it returns until it ends: progress rows, the "unpacking …" line, Ctrl-C cancels, and at
 * the end "REF: DIGEST"; one error line on failure. The subscriptions come first, so not even a fast
 * transfer's Finished can slip past. silent: no progress and no final line, errors only. */
int run_transfer(const char *verb, const char *method, const char *reference, const char *platform, uint64_t flags,
                 bool silent) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL, *props_match = NULL, *owner_match = NULL;
        const char *path;
        PullView v = {};
        sigset_t mask;
        int r;

        if (!verb || !method || !reference)
                return -EINVAL;
        platform = platform ?: "";
        r = broker_connect(&bus);
        if (r < 0)
                return r;
        r = sd_event_default(&event);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return report_bus_error(verb, NULL, r);

        v = (PullView) {
                .bus = bus,
                .event = event,
                .tty = isatty(STDOUT_FILENO),
                .quiet = arg.quiet || silent,
                .rows = g_ptr_array_new_with_free_func(row_free),
                .printed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free),
                .started = now_usec(),
                .platform = isempty(platform) ? NULL : platform,
        };
        {
                Platform def = {};

                if (platform_default(&def) >= 0)
                        v.default_platform = platform_to_string(&def);
                platform_done(&def);
        }

        /* Subscribe before asking, so not even a fast transfer's Finished can slip past. */
        r = sd_bus_add_match(bus, &match,
                             "type='signal',interface='" BERTH_BROKER_TRANSFER_IFACE "',"
                             "path_namespace='" BERTH_BROKER_TRANSFER_PREFIX "'",
                             on_transfer_signal, &v);
        if (r >= 0)
                r = sd_bus_add_match(bus, &props_match,
                                     "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                                     "path_namespace='" BERTH_BROKER_TRANSFER_PREFIX "'",
                                     on_transfer_properties, &v);
        if (r >= 0)
                r = sd_bus_add_match(bus, &owner_match,
                                     "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
                                     "member='NameOwnerChanged',arg0='" BERTH_BROKER_NAME "'",
                                     on_broker_owner_changed, &v);
        if (r < 0) {
                r = report_bus_error(verb, NULL, r);
                goto finish;
        }

        r = broker_call(bus, method, &reply, verb, "sst", reference, platform, flags);
        if (r < 0)
                goto finish;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0) {
                r = report_bus_error(verb, NULL, r);
                goto finish;
        }
        v.path = strdup(path);
        v.broker = strdup(strna(sd_bus_message_get_sender(reply)));
        if (!v.path || !v.broker) {
                r = -ENOMEM;
                goto finish;
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        (void) sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) sd_event_add_signal(event, NULL, SIGINT, on_sigint, &v);
        (void) sd_event_add_signal(event, NULL, SIGTERM, on_sigint, &v);

        r = sd_event_loop(event);
        if (r < 0) {
                r = report_bus_error(verb, NULL, r);
                goto finish;
        }
        if (!v.finished) {
                fprintf(stderr, "berthctl: %s: interrupted (the transfer %s continues)\n", verb, v.path);
                r = -EINTR;
                goto finish;
        }
        if (v.result < 0) {
                _cleanup_free_ char *line = printable_line(v.error);
                fprintf(stderr, "berthctl: %s: %s\n", verb, strna(line));
                r = v.result;
                goto finish;
        }
        if (!v.quiet && v.unpack_started > 0 && !v.tty)
                printf("done: %.1fs\n", (double) (now_usec() - v.started) / 1e6);
        if (!silent)
                printf("%s: %s\n", v.reference, v.digest);
        r = 0;
finish:
        g_ptr_array_unref(v.rows);
        g_hash_table_unref(v.printed);
        free(v.path);
        free(v.broker);
        free(v.error);
        free(v.reference);
        free(v.digest);
        free(v.state);
        free(v.image_digest);
        free(v.default_platform);
        return r;
}

static int verb_pull(int argc, char *argv[]) {
        enum { ARG_PLATFORM = 0x100, ARG_ALL_PLATFORMS, ARG_NO_UNPACK };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "platform", required_argument, NULL, ARG_PLATFORM },
                { "all-platforms", no_argument, NULL, ARG_ALL_PLATFORMS },
                { "no-unpack", no_argument, NULL, ARG_NO_UNPACK },
                { "quiet", no_argument, NULL, 'q' },
                {}
        };
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
                fprintf(stderr, "berthctl: images pull: --platform and --all-platforms exclude each other\n");
                return -EINVAL;
        }

        return run_transfer("images pull", "PullImage", argv[optind], platform, flags, false);
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
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "platform", required_argument, NULL, ARG_PLATFORM },
                { "quiet", no_argument, NULL, 'q' },
                {}
        };
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
        return run_transfer("images unpack", "UnpackImage", argv[optind], platform, 0, false);
}

/* ---- ls --------------------------------------------------------------------------------------------- */

static int verb_ls(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(JsonBuilder) b = json_builder_new();
        bool quiet = false;
        int r;

        if (wants_help(argc, argv)) {
                printf("berthctl images ls [--json] [-q]\n\nList images: REF DIGEST SIZE PLATFORM.\n");
                return 0;
        }
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--json"))
                        arg.json = true;
                else if (streq(argv[i], "-q") || streq(argv[i], "--quiet"))
                        quiet = true;
                else {
                        fprintf(stderr, "berthctl: images ls: unknown argument '%s'\n", argv[i]);
                        return -EINVAL;
                }
        }
        r = broker_connect_call(&bus, "ListImages", &reply, "images ls", NULL);
        if (r < 0)
                return r;

        r = sd_bus_message_enter_container(reply, 'a', "(sssts)");
        if (r < 0)
                return report_bus_error("images ls", NULL, r);
        if (arg.json)
                json_builder_begin_array(b);
        else if (!quiet)
                printf("%-50s %-71s %-10s %s\n", "REF", "DIGEST", "SIZE", "PLATFORM");
        for (;;) {
                const char *name, *digest, *media_type, *platforms;
                uint64_t size;
                char sz[32];

                r = sd_bus_message_read(reply, "(sssts)", &name, &digest, &media_type, &size, &platforms);
                if (r < 0)
                        return report_bus_error("images ls", NULL, r);
                if (r == 0)
                        break;
                if (arg.json) {
                        g_auto(GStrv) l = g_strsplit(platforms, ",", -1);

                        json_builder_begin_object(b);
                        json_builder_set_member_name(b, "reference");
                        json_builder_add_string_value(b, name);
                        json_builder_set_member_name(b, "digest");
                        json_builder_add_string_value(b, digest);
                        json_builder_set_member_name(b, "media_type");
                        json_builder_add_string_value(b, media_type);
                        json_builder_set_member_name(b, "size");
                        json_builder_add_int_value(b, (gint64) size);
                        json_builder_set_member_name(b, "platforms");
                        json_builder_begin_array(b);
                        for (char **p = l; p && *p; p++)
                                if (**p)
                                        json_builder_add_string_value(b, *p);
                        json_builder_end_array(b);
                        json_builder_end_object(b);
                } else if (quiet)
                        printf("%s\n", name);
                else {
                        format_bytes(sz, sizeof(sz), size);
                        printf("%-50s %-71s %-10s %s\n", name, digest, sz, platforms);
                }
        }
        if (arg.json) {
                json_builder_end_array(b);
                print_json_builder(b);
        }
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
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r, ret = 0;

        if (wants_help(argc, argv)) {
                printf("berthctl images rm REF...\n\nRemove image names; their blobs stay until 'content gc'.\n");
                return 0;
        }
        if (argc < 2) {
                fprintf(stderr, "berthctl: images rm: expected at least one reference\n");
                return -EINVAL;
        }
        r = broker_connect(&bus);
        if (r < 0)
                return r;
        for (int i = 1; i < argc; i++) {
                r = broker_call(bus, "RemoveImage", NULL, "images rm", "st", argv[i], UINT64_C(0));
                if (r < 0)
                        ret = r;
                else if (!arg.quiet)
                        printf("%s\n", argv[i]);
        }
        return ret;
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
        { "unpack", "[--platform P] REF", "Unpack an image in the content store into snapshots", verb_unpack },
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
