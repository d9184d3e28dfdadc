/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Container.ResizeTerminal and KillExec: a foreground run's, an attach's or an exec's client acting on its
 * session once started (authorised by container-object.c's CONTAINER_METHOD, container-manage on one's
 * own container, as Attach and Exec). The supervisor and the container's shim check the rest: the
 * container has a terminal, the pid is a process the shim started in this container and has not reaped. */
#include <signal.h>

#include "berth-limits.h"
#include "broker-containers.h"
#include "bus-names.h"
#include "bus-util.h"
#include "supervisor-client.h"

static bool has_process(const ContainerRecord *c, bool created_too) {
        return streq(c->status, "running") || streq(c->status, "paused") ||
               (created_too && streq(c->status, "created"));
}

int container_resize_terminal_body(sd_bus_message *m, Manager *manager, ContainerRecord *c,
                                   sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        uint32_t rows, cols;
        uint64_t flags;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_read(m, "uut", &rows, &cols, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        if (rows == 0 || cols == 0 || rows > TERMINAL_SIZE_MAX || cols > TERMINAL_SIZE_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid terminal size %ux%u.",
                                         rows, cols);
        /* Created too: run -t sets the size before Start. */
        if (!has_process(c, true))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Container '%s' is not running.",
                                         c->name);
        r = supervisor_new_call(manager, &call, "ResizeContainerTerminal");
        if (r >= 0)
                r = sd_bus_message_append(call, "suut", c->id, rows, cols, UINT64_C(0));
        if (r < 0)
                return r;
        return container_forward_call(manager, m, call, "Resizing the terminal");
}

int container_kill_exec_body(sd_bus_message *m, Manager *manager, ContainerRecord *c, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        uint32_t pid;
        int32_t sig;
        uint64_t flags;
        int r;

        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_read(m, "uit", &pid, &sig, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        if (sig <= 0 || sig >= _NSIG)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid signal %d.", sig);
        if (pid == 0 || pid > INT32_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid pid %u.", pid);
        if (!has_process(c, false))
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Container '%s' is not running.",
                                         c->name);
        r = supervisor_new_call(manager, &call, "SignalExec");
        if (r >= 0)
                r = sd_bus_message_append(call, "suit", c->id, pid, sig, UINT64_C(0));
        if (r < 0)
                return r;
        return container_forward_call(manager, m, call, "Signalling the exec'd process");
}
