/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>
#include <string.h>

#include "bus-names.h"
#include "bus-polkit.h"
#include "bus-util.h"
#include "log.h"

typedef struct PolkitQuery {
        sd_bus_message *request;
        char *action;
        const char *denied_error;
        polkit_continuation_t cont;
        void *userdata;
        void (*destroy)(void *userdata);
} PolkitQuery;

static PolkitQuery *polkit_query_free(PolkitQuery *q) {
        if (!q)
                return NULL;
        if (q->destroy)
                q->destroy(q->userdata);
        sd_bus_message_unref(q->request);
        free(q->action);
        return mfree(q);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(PolkitQuery *, polkit_query_free);

static void polkit_query_destroy(void *userdata) {
        polkit_query_free(userdata);
}

static int run_continuation(sd_bus_message *m, polkit_continuation_t cont, void *userdata) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = cont(m, userdata, &error);
        if (r < 0)
                return bus_reply_errno(m, r, &error);
        return r;
}

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        PolkitQuery *q = userdata;
        const sd_bus_error *e;
        int authorized = 0, challenge = 0, r;

        e = sd_bus_message_get_error(reply);
        if (e) {
                /* SECURITY: polkit unavailable or confused means denied, never allowed. */
                log_warning("Polkit check for '%s' failed: %s", q->action, e->message ?: e->name);
                return sd_bus_reply_method_errorf(q->request, q->denied_error,
                                                  "Authorization check for '%s' failed (polkit: %s).",
                                                  q->action, e->message ?: e->name);
        }

        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0) {
                log_warning_errno(r, "Malformed polkit reply for '%s': %m", q->action);
                return sd_bus_reply_method_errorf(
                        q->request, q->denied_error,
                        "Authorization check for '%s' failed (malformed polkit reply).", q->action);
        }

        if (authorized)
                return run_continuation(q->request, q->cont, q->userdata);

        if (challenge && !sd_bus_message_get_allow_interactive_authorization(q->request))
                return sd_bus_reply_method_errorf(
                        q->request, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                        "Interactive authentication required for '%s'.", q->action);

        return sd_bus_reply_method_errorf(q->request, q->denied_error,
                                          "Not authorized: polkit action '%s' was denied.", q->action);
}

static int polkit_check(sd_bus_message *m, const char *sender, const char *denied_error, const char *action,
                        const char *const *details, polkit_continuation_t cont, void *userdata,
                        void (*destroy)(void *userdata), sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_(polkit_query_freep) PolkitQuery *q = NULL;
        int r;

        /* From here on the query owns userdata (its free runs destroy), whatever happens. */
        q = calloc(1, sizeof(*q));
        if (!q) {
                if (destroy)
                        destroy(userdata);
                return -ENOMEM;
        }
        q->request = sd_bus_message_ref(m);
        q->denied_error = denied_error;
        q->cont = cont;
        q->userdata = userdata;
        q->destroy = destroy;

        r = sd_bus_message_new_method_call(sd_bus_message_get_bus(m), &call, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r < 0)
                return r;
        r = sd_bus_message_append(call, "(sa{sv})s", "system-bus-name", 1, "name", "s", sender, action);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(call, 'a', "{ss}");
        if (r < 0)
                return r;
        for (const char *const *d = details; d && d[0] && d[1]; d += 2) {
                r = sd_bus_message_append(call, "{ss}", d[0], d[1]);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(call);
        if (r < 0)
                return r;
        /* Flag 1 = AllowUserInteraction, only when the caller said it can handle a prompt. */
        r = sd_bus_message_append(
                call, "us", (uint32_t) (sd_bus_message_get_allow_interactive_authorization(m) ? 1 : 0), "");
        if (r < 0)
                return r;

        q->action = strdup(action);
        if (!q->action)
                return -ENOMEM;

        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        /* Interactive checks wait for a human; give them as long as systemd does. */
        r = sd_bus_call_async(sd_bus_message_get_bus(m), &slot, call, on_polkit_reply, q,
                              25ULL * 60 * 1000000);
        if (r < 0)
                return r;
        r = sd_bus_slot_set_destroy_callback(slot, polkit_query_destroy);
        if (r < 0)
                return r;
        /* From here on the slot owns the query and frees it when the reply arrives or the bus goes. */
        TAKE_PTR(q);
        r = sd_bus_slot_set_floating(slot, true);
        if (r < 0)
                return r;
        return 1;
}

int bus_polkit_check_async(sd_bus_message *m, const char *action, const char *const *details,
                           polkit_continuation_t cont, void *userdata, sd_bus_error *error) {
        return bus_polkit_check_async_full(m, action, details, cont, userdata, NULL, error);
}

int bus_polkit_check_async_full(sd_bus_message *m, const char *action, const char *const *details,
                                polkit_continuation_t cont, void *userdata, void (*destroy)(void *userdata),
                                sd_bus_error *error) {
        const char *sender;
        uid_t uid;
        int r;

        r = bus_message_sender_uid(m, &uid);
        if (r < 0) {
                if (destroy)
                        destroy(userdata);
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED,
                                         "Cannot establish the caller's identity.");
        }
        if (uid == 0) {
                r = cont(m, userdata, error);
                if (destroy)
                        destroy(userdata);
                return r;
        }

        sender = sd_bus_message_get_sender(m);
        if (!sender) {
                if (destroy)
                        destroy(userdata);
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED, "Message has no sender.");
        }
        return polkit_check(m, sender, BERTH_ERROR_ACCESS_DENIED, action, details, cont, userdata, destroy,
                            error);
}

bool bus_unique_name_is_valid(const char *s) {
        /* ":<digits>.<digits>" as dbus-daemon hands them out; nothing else can name a peer. */
        size_t n;

        if (!s || s[0] != ':' || strlen(s) > 255)
                return false;
        n = strspn(s + 1, "0123456789.");
        return n > 0 && s[1 + n] == 0 && s[1] != '.' && strchr(s, '.');
}

int bus_polkit_check_subject_async(sd_bus_message *m, const char *subject, const char *action,
                                   const char *const *details, polkit_continuation_t cont, void *userdata,
                                   sd_bus_error *error) {
        if (!bus_unique_name_is_valid(subject))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid caller bus name.");
        /* polkit itself authorises a root subject; a vanished subject is denied. */
        return polkit_check(m, subject, BERTH_ERROR_NOT_ALLOWED, action, details, cont, userdata, NULL,
                            error);
}
