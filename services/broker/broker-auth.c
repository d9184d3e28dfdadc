/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "broker.h"
#include "bus-names.h"
#include "bus-polkit.h"
#include "log.h"
#include "macro.h"

/* Which polkit action each public method of org.berth.Broker1.Manager needs. This table is the whole
 * authorisation policy of the public API: audit it here. A method missing from it is refused. */
static const struct {
        const char *member;
        const char *action;
} method_actions[] = {
        /* SECURITY: GetInfo reveals service state and versions only; still gated (org.berth.info) so that
         * a host can keep berth invisible to users outside group berth. */
        { "GetInfo", BERTH_ACTION_INFO },
};

const char *broker_action_for_method(const char *member) {
        if (!member)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(method_actions); i++)
                if (streq(method_actions[i].member, member))
                        return method_actions[i].action;
        return NULL;
}

int broker_authorize(sd_bus_message *m, const char *const *details,
                     int (*cont)(sd_bus_message *m, void *userdata, sd_bus_error *error), void *userdata,
                     sd_bus_error *error) {
        const char *action = broker_action_for_method(sd_bus_message_get_member(m));

        if (!action)
                return sd_bus_error_setf(error, BERTH_ERROR_ACCESS_DENIED, "Method '%s' has no authorization rule.",
                                         strna(sd_bus_message_get_member(m)));
        return bus_polkit_check_async(m, action, details, cont, userdata, error);
}
