/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "bus-idle.h"
#include "log.h"
#include "macro.h"

#define USEC_PER_SEC UINT64_C(1000000)

int bus_idle_timeout_load(const char *config_dir, const char *file, const char *group, uint64_t *ret_usec,
                          char **ret_error) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autoptr(GError) error = NULL;
        g_autofree char *path = g_build_filename(config_dir, file, NULL);
        g_autofree char *s = NULL;
        guint64 n;

        *ret_usec = BUS_IDLE_EXIT_SEC_DEFAULT * USEC_PER_SEC;
        if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &error)) {
                if (g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
                        return 0;
                if (ret_error)
                        *ret_error = g_strdup_printf("Failed to read '%s': %s", path, error->message);
                return -EINVAL;
        }
        s = g_key_file_get_value(kf, group, BUS_IDLE_KEY, NULL);
        if (!s)
                return 0;
        if (!g_ascii_string_to_unsigned(g_strstrip(s), 10, 0, BUS_IDLE_EXIT_SEC_MAX, &n, &error)) {
                if (ret_error)
                        *ret_error = g_strdup_printf("%s: [%s] %s: %s", path, group, BUS_IDLE_KEY,
                                                     error->message);
                return -EINVAL;
        }
        *ret_usec = n * USEC_PER_SEC;
        return 0;
}

bool bus_has_pending_calls(sd_bus *bus) {
        uint64_t t;

        /* > 0 with a finite time: a reply is awaited (or a message waits to be read). Every call berth
         * makes has a finite timeout, so none hides from this. A failure counts as busy: better to stay
         * than to drop a reply. */
        if (sd_bus_get_timeout(bus, &t) < 0)
                return true;
        return t != UINT64_MAX;
}

typedef enum IdleState {
        IDLE_SERVING,   /* owns the name */
        IDLE_RELEASING, /* ReleaseName sent, draining what was queued for us */
        IDLE_RELEASED,  /* the bus confirmed: nobody can queue calls for us any more */
} IdleState;

static int on_name_released(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        IdleState *state = userdata;

        /* The bus sends NameOwnerChanged after everything it routed to us before the release: every
         * call queued for this instance has been read and dispatched by now. */
        *state = IDLE_RELEASED;
        return 0;
}

static int start_release(sd_bus *bus, const char *name, IdleState *state, sd_bus_slot **ret_match) {
        _cleanup_free_ char *match = NULL;
        const char *unique;
        int r;

        r = sd_bus_get_unique_name(bus, &unique);
        if (r < 0)
                return r;
        if (asprintf_safe(
                    &match,
                    "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                    "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='%s',arg1='%s',arg2=''",
                    name, unique) < 0)
                return -ENOMEM;
        /* The match is in place before the release is sent (the bus handles our messages in order), so
         * the signal cannot slip past. */
        r = sd_bus_add_match_async(bus, ret_match, match, on_name_released, NULL, state);
        if (r < 0)
                return r;
        r = sd_bus_release_name_async(bus, NULL, name, NULL, NULL);
        if (r < 0)
                return r;
        *state = IDLE_RELEASING;
        return 0;
}

int bus_event_loop_with_idle(sd_event *event, sd_bus *bus, const char *name, uint64_t timeout_usec,
                             bool (*busy)(void *userdata), void *userdata) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL;
        IdleState state = IDLE_SERVING;
        bool draining_logged = false;
        int r, code = 0;

        for (;;) {
                bool idle, working;

                if (sd_event_get_state(event) == SD_EVENT_FINISHED)
                        break;

                working = busy && busy(userdata);
                idle = !working && !bus_has_pending_calls(bus);
                if (state == IDLE_RELEASED) {
                        if (idle) {
                                log_debug("Released %s and nothing is left to do, exiting.", name);
                                r = sd_event_exit(event, 0);
                                if (r < 0)
                                        return r;
                        } else if (working && !draining_logged) {
                                /* A call that was queued for us before the release started work: finish
                                 * it (without the name; its caller talks to our unique name), then go. */
                                log_info("Finishing work that arrived while releasing %s.", name);
                                draining_logged = true;
                        }
                }

                r = sd_event_run(event, state == IDLE_SERVING && idle && timeout_usec > 0 ? timeout_usec
                                                                                          : UINT64_MAX);
                if (r < 0)
                        return r;
                if (r == 0 && state == IDLE_SERVING && idle && timeout_usec > 0) {
                        log_info("Idle for %.1f s, releasing %s and exiting.",
                                 (double) timeout_usec / USEC_PER_SEC, name);
                        /* systemd queues start requests for a unit that said STOPPING=1 instead of
                         * handing them to the process that is about to leave. */
                        (void) sd_notify(false, "STOPPING=1\nSTATUS=Exiting after an idle period");
                        r = start_release(bus, name, &state, &match);
                        if (r < 0)
                                return r;
                }
        }

        r = sd_event_get_exit_code(event, &code);
        if (r < 0)
                return r;
        return code;
}
