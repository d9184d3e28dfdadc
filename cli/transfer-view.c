/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

#include "berthctl.h"
#include "bus-names.h"
#include "bus-util.h"
#include "escape.h"
#include "oci-types.h"
#include "transfer-view.h"

/* Following a broker Transfer on the terminal, for every command that starts or joins one (images pull,
 * images unpack, images import): one row per blob with a bar on a terminal, one line per blob state
 * change otherwise, Ctrl-C cancels, and one error line when it fails. */

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

typedef struct Row {
        char *digest;
        char *state;
        uint64_t done, total;
} Row;

typedef struct PullView {
        sd_bus *bus;
        sd_event *event;
        char *path;   /* our transfer */
        char *broker; /* unique name of the broker that answered PullImage */
        bool tty, quiet;
        unsigned lines_drawn;
        GPtrArray *rows;     /* Row* */
        GHashTable *printed; /* digest → last printed state (plain mode) */
        uint64_t done, total;
        uint64_t started, last_draw;
        bool cancel_sent;
        bool finished;
        const char *platform;   /* as asked, NULL = default */
        char *default_platform; /* this machine's, "linux/amd64" */
        char *image_digest;     /* ImageDigest once resolved, for the unpacking line */
        int result;             /* 0 done, <0 failed/cancelled */
        char *error;
        char *reference;
        char *digest;
        char *state; /* the transfer's State, from PropertiesChanged */
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
        size_t width = size - 1,
               filled = total > 0 ? (size_t) ((double) done / (double) total * (double) width) : 0;

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
                printf("\033[2K%-12s  %-11s [%s] %10s / %-10s\n", short_digest(r->digest), r->state, bar, d,
                       t);
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
                r = sd_bus_get_property_string(v->bus, BERTH_BROKER_NAME, v->path,
                                               BERTH_BROKER_TRANSFER_IFACE, "Reference", NULL,
                                               &v->reference);
                if (r >= 0)
                        r = sd_bus_get_property_string(v->bus, BERTH_BROKER_NAME, v->path,
                                                       BERTH_BROKER_TRANSFER_IFACE, "ImageDigest", NULL,
                                                       &v->digest);
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
        r = sd_bus_call_method_async(v->bus, NULL, BERTH_BROKER_NAME, v->path, BERTH_BROKER_TRANSFER_IFACE,
                                     "Cancel", NULL, NULL, "");
        if (r < 0)
                return sd_event_exit(v->event, 0);
        return 0;
}

/* Calls method ("sst" reference, platform, flags → "o" transfer: PullImage or UnpackImage) and follows
 * the transfer it returns until it ends: progress rows, the "unpacking …" line, Ctrl-C cancels, and at
 * the end "REF: DIGEST"; one error line on failure. The subscriptions come first, so not even a fast
 * transfer's Finished can slip past. silent: no progress and no final line, errors only. */
int transfer_view_run(const char *verb, const char *method, const char *reference, const char *platform,
                      uint64_t flags, bool silent) {
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

        v = (PullView){
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
                                     "type='signal',interface='org.freedesktop.DBus.Properties',member='"
                                     "PropertiesChanged',"
                                     "path_namespace='" BERTH_BROKER_TRANSFER_PREFIX "'",
                                     on_transfer_properties, &v);
        if (r >= 0)
                r = sd_bus_add_match(
                        bus, &owner_match,
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
                _cleanup_free_ char *line = escape_untrusted(v.error, 0, 0);
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
