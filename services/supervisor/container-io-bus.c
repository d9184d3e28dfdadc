/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* ResizeContainerTerminal and SignalExec: what a client at a foreground run, an attach or an exec does
 * to the container's side of its session after the start. The shim owns the pty master and reaps the
 * exec'd processes, so it is the one to check and act (lib/shim-protocol.h SHIM_OP_RESIZE,
 * SHIM_OP_SIGNAL_EXEC). Called by the broker only, once it authorised the caller on the container. */
#include <signal.h>

#include "berth-limits.h"
#include "bus-names.h"
#include "bus-util.h"
#include "container-io.h"
#include "container.h"
#include "shim-client.h"

static int shim_request(Container *c, uint32_t op, int sig, uint32_t arg, const char *what,
                        sd_bus_error *error) {
        ShimReply reply;
        int r;

        r = shim_call(c->state_dir_fd, op, sig, arg, &reply);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Cannot reach the shim of %s: %s", c->id,
                                         strerror(-r));
        if (reply.error == ESRCH)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "Cannot %s: %s", what, reply.message);
        if (reply.error != 0)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Cannot %s: %s", what,
                                         reply.message);
        return 0;
}

int method_resize_container_terminal(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *id;
        uint32_t rows, cols;
        uint64_t flags;
        Container *c;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "suut", &id, &rows, &cols, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        if (rows == 0 || cols == 0 || rows > TERMINAL_SIZE_MAX || cols > TERMINAL_SIZE_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid terminal size %ux%u.",
                                         rows, cols);
        /* Created too: a foreground run -t gives its size before Start, so the first output fits. */
        r = container_bus_find(userdata, id, CONTAINER_NEED_CREATED_OR_RUNNING, &c, error);
        if (r < 0)
                return r;
        r = shim_request(c, SHIM_OP_RESIZE, 0, rows << 16 | cols, "resize the terminal", error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "");
}

int method_signal_exec(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *id;
        uint32_t pid;
        int32_t sig;
        uint64_t flags;
        Container *c;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "suit", &id, &pid, &sig, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        if (sig <= 0 || sig >= _NSIG)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid signal %d.", sig);
        if (pid == 0 || pid > INT32_MAX)
                return sd_bus_error_setf(error, BERTH_ERROR_INVALID_ARGS, "Invalid pid %u.", pid);
        r = container_bus_find(userdata, id, CONTAINER_NEED_RUNNING, &c, error);
        if (r < 0)
                return r;
        /* SECURITY: the shim signals only a process it started in this container and has not reaped:
         * never the init, never a pid of another container or of the host. */
        r = shim_request(c, SHIM_OP_SIGNAL_EXEC, sig, pid, "signal the exec'd process", error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "");
}
