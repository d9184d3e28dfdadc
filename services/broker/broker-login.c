/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>

#include "berth-limits.h"
#include "broker.h"
#include "bus-error.h"
#include "bus-names.h"
#include "bus-util.h"
#include "fetcher-client.h"
#include "log.h"

/* Login and Logout: registry credentials are the fetcher's (it is the only service that talks to
 * registries); the broker authorises, checks the arguments and forwards them. */

/* The fetcher verifies credentials against the registry before it keeps them: a network round trip. */
#define LOGIN_CALL_TIMEOUT_USEC (BUS_INTERNAL_TIMEOUT_USEC * 4)

/* ---- Login / Logout -------------------------------------------------------------------------------- */

static int on_forwarded_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *request = userdata;

        if (sd_bus_message_is_method_error(m, NULL))
                (void) bus_reply_internal_error(request, sd_bus_message_get_error(m), "Registry login");
        else
                (void) sd_bus_reply_method_return(request, "");
        return 0;
}

/* Forwards the call to the fetcher, which replies through on_forwarded_reply(). */
static int forward(sd_bus_message *m, Manager *manager, sd_bus_error *error, const char *member,
                   const char *types, ...) {
        va_list ap;
        int r;

        va_start(ap, types);
        r = internal_callv(manager, &internal_fetcher, NULL, LOGIN_CALL_TIMEOUT_USEC, on_forwarded_reply,
                           sd_bus_message_ref(m), member, types, ap);
        va_end(ap);
        if (r < 0) {
                sd_bus_message_unref(m);
                return internal_error_unreachable(&internal_fetcher, r, error);
        }
        return 1;
}

static int check_registry(const char *registry, sd_bus_error *error) {
        if (isempty(registry) || strlen(registry) > REGISTRY_NAME_MAX || strchr(registry, '/'))
                return sd_bus_error_setf(
                        error, BERTH_ERROR_INVALID_REFERENCE,
                        "Invalid registry name '%.255s': expected a host, optionally with :port.", registry);
        return 0;
}

typedef struct LoginArgs {
        const char *registry;
        const char *user;
        const char *secret;
} LoginArgs;

static int login_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        LoginArgs *a = args;
        int r;

        r = check_registry(a->registry, error);
        if (r < 0)
                return r;
        if (isempty(a->user) || strlen(a->user) > LOGIN_FIELD_MAX || isempty(a->secret) ||
            strlen(a->secret) > LOGIN_FIELD_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Username and secret must be 1..%u bytes.", LOGIN_FIELD_MAX);
        /* The fetcher checks the grammar of each field again and verifies them against the a->registry. */
        r = forward(m, manager, error, "Login", "sss", a->registry, a->user, a->secret);
        if (r < 0)
                return r;
        log_info("Login to '%s' as '%s' forwarded to the fetcher.", a->registry, a->user);
        return 1;
}

int method_login(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        LoginArgs a = {};
        int r;

        r = sd_bus_message_read(m, "sss", &a.registry, &a.user, &a.secret);
        if (r < 0)
                return r;
        /* Never the a.secret in details: polkit agents show them. */
        const char *details[] = { "registry", strlen(a.registry) <= REGISTRY_NAME_MAX ? a.registry : "",
                                  NULL };
        return broker_authorize(m, details, login_authorized, userdata, &a, sizeof(a), NULL, error);
}

typedef struct LogoutArgs {
        const char *registry;
} LogoutArgs;

static int logout_authorized(sd_bus_message *m, Manager *manager, void *args, sd_bus_error *error) {
        LogoutArgs *a = args;
        int r;

        r = check_registry(a->registry, error);
        if (r < 0)
                return r;
        return forward(m, manager, error, "Logout", "s", a->registry);
}

int method_logout(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        LogoutArgs a = {};
        int r;

        r = sd_bus_message_read(m, "s", &a.registry);
        if (r < 0)
                return r;
        const char *details[] = { "registry", strlen(a.registry) <= REGISTRY_NAME_MAX ? a.registry : "",
                                  NULL };
        return broker_authorize(m, details, logout_authorized, userdata, &a, sizeof(a), NULL, error);
}
