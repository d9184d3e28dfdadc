/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The authorisation table of the public API (broker-auth.c) against the API itself: every method of
 * every object the broker publishes has a polkit action, every rule names a method that exists, and
 * every action is one berth ships. Read from the vtables, so a new method without a rule fails here. */

#include <glib.h>

#include "broker-containers.h"
#include "broker.h"
#include "bus-names.h"
#include "transfer.h"

static const char *const shipped_actions[] = {
        BERTH_ACTION_IMAGE_PULL,           BERTH_ACTION_IMAGE_REMOVE,
        BERTH_ACTION_IMAGE_IMPORT,         BERTH_ACTION_CONTAINER_RUN,
        BERTH_ACTION_CONTAINER_MANAGE,     BERTH_ACTION_CONTAINER_MANAGE_ANY,
        BERTH_ACTION_CONTAINER_PRIVILEGED, BERTH_ACTION_REGISTRY_LOGIN,
        BERTH_ACTION_MAINTENANCE,          BERTH_ACTION_INFO,
        BERTH_ACTION_IMAGE_MOUNT,          BERTH_ACTION_NETWORK_MANAGE,
};

static const sd_bus_vtable *const *published_vtables(void) {
        static const sd_bus_vtable *const l[] = { broker_manager_vtable, broker_transfer_vtable,
                                                  broker_container_vtable, NULL };
        return l;
}

static bool is_shipped(const char *action) {
        for (size_t i = 0; i < G_N_ELEMENTS(shipped_actions); i++)
                if (streq(action, shipped_actions[i]))
                        return true;
        return false;
}

static bool is_published(const char *member) {
        for (const sd_bus_vtable *const *v = published_vtables(); *v; v++)
                for (const sd_bus_vtable *e = *v; e->type != _SD_BUS_VTABLE_END; e++)
                        if (e->type == _SD_BUS_VTABLE_METHOD && streq(e->x.method.member, member))
                                return true;
        return false;
}

static void test_every_method_has_a_rule(void) {
        unsigned methods = 0;

        for (const sd_bus_vtable *const *v = published_vtables(); *v; v++) {
                g_assert_cmpint((*v)[0].type, ==, _SD_BUS_VTABLE_START);
                for (const sd_bus_vtable *e = *v; e->type != _SD_BUS_VTABLE_END; e++) {
                        const char *action;

                        if (e->type != _SD_BUS_VTABLE_METHOD)
                                continue;
                        methods++;
                        action = broker_action_for_method(e->x.method.member);
                        if (!action)
                                g_error("Method %s has no polkit action in broker-auth.c",
                                        e->x.method.member);
                        g_assert_true(is_shipped(action));
                        /* Reachable by any caller through the bus policy: authorisation is the table's. */
                        g_assert_true(e->flags & SD_BUS_VTABLE_UNPRIVILEGED);
                }
        }
        /* The vtables were really read: the Manager's methods and Transfer.Cancel at the least. */
        g_assert_cmpuint(methods, >=, 20);
}

static void test_every_rule_names_a_method(void) {
        size_t n = 0;

        for (const char *member; (member = broker_auth_rule_member(n)); n++)
                if (!is_published(member))
                        g_error("broker-auth.c has a rule for %s, which no vtable publishes", member);
        g_assert_cmpuint(n, >=, 20);
}

static void test_unknown_is_refused(void) {
        g_assert_null(broker_action_for_method(NULL));
        g_assert_null(broker_action_for_method("NoSuchMethod"));
        g_assert_null(broker_action_for_method("getinfo"));
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/broker-auth/every-method-has-a-rule", test_every_method_has_a_rule);
        g_test_add_func("/broker-auth/every-rule-names-a-method", test_every_rule_names_a_method);
        g_test_add_func("/broker-auth/unknown-is-refused", test_unknown_is_refused);
        return g_test_run();
}
