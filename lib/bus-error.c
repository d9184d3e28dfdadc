/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <string.h>

#include "bus-error.h"
#include "bus-names.h"
#include "bus-util.h"
#include "macro.h"

const sd_bus_error_map berth_bus_error_map[] = {
        SD_BUS_ERROR_MAP(BERTH_ERROR_NOT_FOUND, ENOENT),
        SD_BUS_ERROR_MAP(BERTH_ERROR_EXISTS, EEXIST),
        SD_BUS_ERROR_MAP(BERTH_ERROR_BUSY, EBUSY),
        SD_BUS_ERROR_MAP(BERTH_ERROR_CANCELLED, ECANCELED),
        SD_BUS_ERROR_MAP(BERTH_ERROR_LIMIT, E2BIG),
        SD_BUS_ERROR_MAP(BERTH_ERROR_BAD_CONTENT, EBADMSG),
        SD_BUS_ERROR_MAP(BERTH_ERROR_UNSUPPORTED, EOPNOTSUPP),
        SD_BUS_ERROR_MAP_END,
};

int bus_error_map_register(void) {
        /* sd-bus keeps the table (static storage) and ignores a second registration of the same one. */
        return sd_bus_error_add_map(berth_bus_error_map);
}

int bus_error_from_errno(sd_bus_error *e, int r) {
        if (r >= 0 || !e || sd_bus_error_is_set(e))
                return r;
        /* sd-bus translates errno → name with its own table only (the registered maps serve the way
         * back), so ours is looked up here. */
        for (const sd_bus_error_map *m = berth_bus_error_map; m->name; m++)
                if (m->code == -r) {
                        (void) sd_bus_error_setf(e, m->name, "%s", strerror(-r));
                        return r;
                }
        return r;
}

bool bus_error_is_gone(const sd_bus_error *e) {
        static const char *const gone[] = {
                SD_BUS_ERROR_NO_REPLY,                 /* timed out, or the peer exited before answering */
                SD_BUS_ERROR_SERVICE_UNKNOWN,          /* not activatable */
                SD_BUS_ERROR_NAME_HAS_NO_OWNER,        /* not running */
                SD_BUS_ERROR_DISCONNECTED,             /* our own connection went */
                "org.freedesktop.DBus.Error.TimedOut", /* activation timed out */
        };

        if (!e || !e->name)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(gone); i++)
                if (streq(e->name, gone[i]))
                        return true;
        /* Spawn.ChildExited, Spawn.ExecFailed, …: activation could not start the service. */
        return startswith(e->name, "org.freedesktop.DBus.Error.Spawn.") != NULL;
}

bool bus_error_is_berth(const sd_bus_error *e) {
        return e && e->name && startswith(e->name, BERTH_ERROR_PREFIX);
}

int bus_error_set_internal(sd_bus_error *ret, const sd_bus_error *e, const char *what) {
        if (bus_error_is_berth(e))
                return sd_bus_error_setf(ret, e->name, "%s", e->message ?: e->name);
        return sd_bus_error_setf(ret, BERTH_ERROR_SERVICE_UNAVAILABLE, "%s failed: %s", what,
                                 e ? (e->message ?: e->name) : "no reply");
}

int bus_reply_internal_error(sd_bus_message *request, const sd_bus_error *e, const char *what) {
        _cleanup_bus_error_ sd_bus_error error = SD_BUS_ERROR_NULL;

        (void) bus_error_set_internal(&error, e, what);
        return sd_bus_reply_method_error(request, &error);
}
