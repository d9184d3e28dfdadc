/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* GetContainerSpec: the config.json the engine ran, as written in the container's state directory, for
 * the broker's inspect. Broker only; the bytes are ours (spec-build.c wrote them), read without following
 * a symlink and bounded by CONTAINER_SPEC_MAX; the broker still parses them as untrusted input. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "bus-names.h"
#include "bus-util.h"
#include "container.h"
#include "fs-util.h"
#include "macro.h"

int method_get_container_spec(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        const char *id;
        uint64_t flags;
        Container *c;
        size_t size;
        int r;

        r = bus_require_broker(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "st", &id, &flags);
        if (r < 0)
                return r;
        r = bus_check_flags(flags, 0, error);
        if (r < 0)
                return r;
        r = container_bus_find(userdata, id, CONTAINER_NEED_VISIBLE, &c, error);
        if (r < 0)
                return r;

        fd = openat(c->state_dir_fd, "config.json", O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
                return sd_bus_error_setf(error, BERTH_ERROR_NOT_FOUND, "Container %s has no runtime spec.",
                                         id);
        if (fd < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Cannot open the runtime spec of %s: %m",
                                         id);
        r = read_regular_file_fd(fd, CONTAINER_SPEC_MAX, &buf, &size);
        if (r == -EBADFD || r == -EFBIG)
                return sd_bus_error_setf(error, BERTH_ERROR_IO,
                                         "The runtime spec of %s is not a file of at most %u bytes.", id,
                                         CONTAINER_SPEC_MAX);
        if (r < 0)
                return sd_bus_error_setf(error, BERTH_ERROR_IO, "Cannot read the runtime spec of %s: %s", id,
                                         strerror(-r));

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_append_array(reply, 'y', buf, size);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}
