/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* berthctl events [--json] [--filter K=V]... [--since TIME] [--all-users]
 *
 * Subscribes with Manager.SubscribeEvents (the reply replays the broker's recent events since TIME) and
 * then prints the Event signals the broker sends to this connection only, until interrupted. */
#include <getopt.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "berthctl.h"
#include "escape.h"
#include "macro.h"
#include "bus-names.h"
#include "log-record.h"
#include "output.h"

#define SUBSCRIBE_EVENTS_FLAG_ALL_USERS (UINT64_C(1) << 0)
#define FILTERS_MAX 32

typedef struct Filter {
        const char *key; /* type, event, container, image */
        const char *value;
} Filter;

typedef struct EventsCtx {
        Filter filters[FILTERS_MAX];
        size_t n_filters;
        bool json;
        char *broker; /* the broker's unique name: only its signals count */
        int error;
} EventsCtx;

typedef struct EventView {
        uint64_t time;
        const char *type, *action, *id, *name;
        uint32_t owner;
        const char *attrs[32]; /* key, value, … */
        size_t n_attrs;
} EventView;

static bool filter_match(const EventsCtx *ctx, const EventView *e) {
        /* Values for one key are alternatives; different keys must all match (docker's rule). */
        static const char *const keys[] = { "type", "event", "container", "image" };

        for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
                bool seen = false, hit = false;

                for (size_t i = 0; i < ctx->n_filters; i++) {
                        const Filter *f = &ctx->filters[i];
                        if (!streq(f->key, keys[k]))
                                continue;
                        seen = true;
                        if (k == 0)
                                hit |= streq(f->value, e->type);
                        else if (k == 1)
                                hit |= streq(f->value, e->action);
                        else if (k == 2)
                                hit |= streq(e->type, "container") &&
                                       (streq(f->value, e->name) || g_str_has_prefix(e->id, f->value));
                        else
                                hit |= streq(e->type, "image") && streq(f->value, e->name);
                }
                if (seen && !hit)
                        return false;
        }
        return true;
}

static int read_event(sd_bus_message *m, EventView *e) {
        int r;

        r = sd_bus_message_read(m, "tssssu", &e->time, &e->type, &e->action, &e->id, &e->name, &e->owner);
        if (r <= 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "{ss}");
        while (r >= 0) {
                const char *k, *v;
                r = sd_bus_message_read(m, "{ss}", &k, &v);
                if (r <= 0)
                        break;
                if (e->n_attrs + 2 <= ELEMENTSOF(e->attrs)) {
                        e->attrs[e->n_attrs++] = k;
                        e->attrs[e->n_attrs++] = v;
                }
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        return r < 0 ? r : 1;
}

static void print_event(const EventsCtx *ctx, const EventView *e) {
        char when[64];

        if (!filter_match(ctx, e))
                return;
        format_rfc3339(e->time, when, sizeof(when));
        if (ctx->json) {
                g_autoptr(JsonBuilder) b = json_builder_new();
                g_autoptr(JsonNode) root = NULL;
                g_autofree char *text = NULL;

                json_builder_begin_object(b);
                json_builder_set_member_name(b, "time");
                json_builder_add_string_value(b, when);
                json_builder_set_member_name(b, "time_usec");
                json_builder_add_int_value(b, (gint64) e->time);
                json_builder_set_member_name(b, "type");
                json_builder_add_string_value(b, e->type);
                json_builder_set_member_name(b, "action");
                json_builder_add_string_value(b, e->action);
                json_builder_set_member_name(b, "id");
                json_builder_add_string_value(b, e->id);
                json_builder_set_member_name(b, "name");
                json_builder_add_string_value(b, e->name);
                if (streq(e->type, "container")) {
                        json_builder_set_member_name(b, "owner");
                        json_builder_add_int_value(b, e->owner);
                }
                json_builder_set_member_name(b, "attributes");
                json_builder_begin_object(b);
                for (size_t i = 0; i + 1 < e->n_attrs; i += 2) {
                        json_builder_set_member_name(b, e->attrs[i]);
                        json_builder_add_string_value(b, e->attrs[i + 1]);
                }
                json_builder_end_object(b);
                json_builder_end_object(b);
                root = json_builder_get_root(b);
                text = json_to_string(root, false);
                printf("%s\n", text);
        } else {
                /* SECURITY: the broker's strings reach a terminal escaped (lib/escape.h). JSON escapes its
                 * own control characters. */
                _cleanup_free_ char *type = escape_untrusted(e->type, 0, 0),
                                    *action = escape_untrusted(e->action, 0, 0),
                                    *id = escape_untrusted(*e->id ? e->id : "-", 0, 0),
                                    *name = escape_untrusted(e->name, 0, 0);

                printf("%s %s %s %s (name=%s", when, strna(type), strna(action), strna(id), strna(name));
                for (size_t i = 0; i + 1 < e->n_attrs; i += 2) {
                        _cleanup_free_ char *k = escape_untrusted(e->attrs[i], 0, 0),
                                            *v = escape_untrusted(e->attrs[i + 1], 0, 0);

                        printf(", %s=%s", strna(k), strna(v));
                }
                printf(")\n");
        }
        fflush(stdout);
}

static int on_event(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        EventsCtx *ctx = userdata;
        EventView e = {};

        /* SECURITY: anyone may send us a signal with this name; only the broker's count. */
        if (!ctx->broker || !streq_ptr(sd_bus_message_get_sender(m), ctx->broker))
                return 0;
        if (read_event(m, &e) > 0)
                print_event(ctx, &e);
        return 0;
}

static int on_broker_gone(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        EventsCtx *ctx = userdata;
        const char *name, *old, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old, &new_owner) >= 0 && ctx->broker &&
            streq(old, ctx->broker)) {
                fprintf(stderr, "berthctl: events: the broker went away\n");
                ctx->error = -ECONNRESET;
        }
        return 0;
}

static void events_help(void) {
        printf("berthctl events [--json] [--filter KEY=VALUE]... [--since TIME] [--all-users]\n\n"
               "Print container and image events as they happen (create, start, die, stop, kill, pause,\n"
               "unpause, oom, destroy; pull, tag, delete), until interrupted.\n\n"
               "     --json             One JSON object per line\n"
               "     --filter K=V       type=container|image, event=ACTION, container=NAME|ID, image=REF\n"
               "     --since TIME       First replay the broker's recent events since TIME (RFC 3339 or a\n"
               "                        duration like 10m)\n"
               "     --all-users        Everyone's container events (org.berth.container-manage-any)\n");
}

int cmd_events(int argc, char *argv[]) {
        enum { ARG_JSON = 0x100, ARG_FILTER, ARG_SINCE, ARG_ALL_USERS };
        static const struct option options[] = { { "help", no_argument, NULL, 'h' },
                                                 { "json", no_argument, NULL, ARG_JSON },
                                                 { "filter", required_argument, NULL, ARG_FILTER },
                                                 { "since", required_argument, NULL, ARG_SINCE },
                                                 { "all-users", no_argument, NULL, ARG_ALL_USERS },
                                                 {} };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL, *gone = NULL;
        EventsCtx ctx = { .json = arg.json };
        uint64_t since = 0, flags = 0;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+hf:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        events_help();
                        return 0;
                case ARG_JSON:
                        ctx.json = true;
                        break;
                case 'f':
                case ARG_FILTER: {
                        char *eq = strchr(optarg, '=');
                        if (!eq || ctx.n_filters >= FILTERS_MAX) {
                                fprintf(stderr, "berthctl: events: invalid --filter '%s' (KEY=VALUE)\n",
                                        optarg);
                                return -EINVAL;
                        }
                        *eq = 0;
                        if (!streq(optarg, "type") && !streq(optarg, "event") &&
                            !streq(optarg, "container") && !streq(optarg, "image")) {
                                fprintf(stderr, "berthctl: events: unknown filter '%s'\n", optarg);
                                return -EINVAL;
                        }
                        ctx.filters[ctx.n_filters++] = (Filter){ optarg, eq + 1 };
                        break;
                }
                case ARG_SINCE:
                        if (log_parse_since(optarg, &since) < 0 || since == 0) {
                                fprintf(stderr, "berthctl: events: invalid --since '%s'\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case ARG_ALL_USERS:
                        flags |= SUBSCRIBE_EVENTS_FLAG_ALL_USERS;
                        break;
                default:
                        return -EINVAL;
                }
        if (optind != argc) {
                fprintf(stderr, "berthctl: events: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        r = broker_connect(&bus);
        if (r < 0)
                return r;
        /* The match first: an event sent right after the reply must find it. */
        r = sd_bus_match_signal(bus, &slot, NULL, BERTH_BROKER_PATH, BERTH_BROKER_MANAGER_IFACE, "Event",
                                on_event, &ctx);
        if (r >= 0)
                r = sd_bus_add_match(
                        bus, &gone,
                        "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                        "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                        "arg0='" BERTH_BROKER_NAME "'",
                        on_broker_gone, &ctx);
        if (r < 0)
                return report_bus_error("events", NULL, r);
        r = broker_call(bus, "SubscribeEvents", &reply, "events", "tt", since, flags);
        if (r < 0)
                return r;
        ctx.broker = g_strdup(sd_bus_message_get_sender(reply));
        r = sd_bus_message_enter_container(reply, 'a', "(tssssua{ss})");
        while (r >= 0) {
                EventView e = {};

                r = sd_bus_message_enter_container(reply, 'r', "tssssua{ss}");
                if (r <= 0)
                        break;
                r = read_event(reply, &e);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        print_event(&ctx, &e);
        }
        if (r < 0) {
                g_free(ctx.broker);
                return report_bus_error("events", NULL, r);
        }
        fflush(stdout);
        while (ctx.error == 0) {
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        break;
                if (r > 0)
                        continue;
                r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0 && r != -EINTR)
                        break;
        }
        g_free(ctx.broker);
        if (ctx.error < 0)
                return ctx.error;
        if (r < 0 && r != -ECONNRESET)
                return report_bus_error("events", NULL, r);
        return 0;
}
