/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "log-record.h"

/* Shared by the container commands (cmd-run.c, cmd-containers.c, container-attach.c). Commands that
 * report a container's exit status (run, start -a, wait) return it (0..255); CLI_EXIT_ERROR is a failure
 * of berthctl itself, exit status 125 as with docker and podman. */
#define CLI_EXIT_ERROR (-125)

/* The object path of the container NAME (a name, an id or an unambiguous id prefix), via
 * Manager.GetContainer; reports a failure as "berthctl: <what>: …". */
int container_resolve(sd_bus *bus, const char *name, const char *what, char **ret_path);
/* Calls member on the container object path with types/...; reports a failure. */
int container_call(sd_bus *bus, const char *path, const char *member, sd_bus_message **reply,
                   const char *what, const char *types, ...);
/* The id part of a container object path (borrowed). */
const char *container_id_from_path(const char *path);
/* The exit status of a container's exit code as a shell reports it. */
int container_exit_status(int32_t exit_code);
/* Copies the container's log (OpenLog) to stdout; with follow, until the container stopped. */
int container_print_log(sd_bus *bus, const char *path, bool follow, const char *what);
/* cmd-logs.c: the same with logs' options (--tail, --since, -t); returns 0 or a negative errno. */
int container_print_log_full(sd_bus *bus, const char *path, const LogOptions *o, const char *what);

/* container-attach.c: a foreground run. Starts the container with Wait already pending, forwards the
 * signals berthctl receives to the container's init; without a terminal copies the read ends out[2] of the
 * pipes passed as the container's stdout and stderr to ours, with one copies between the terminal and the
 * session stream pty (raw mode, window size). Returns the container's exit status, or CLI_EXIT_ERROR. */
int container_attach_run(sd_bus *bus, const char *path, int pty, const int out[2], bool tty,
                         bool interactive, bool rm);

/* A Wait(EXIT_ONLY) call (no timeout) sent asynchronously; the callback gets (exit_code, reason) as soon as
 * the container exited, before the removal of a --rm container ends. */
int container_wait_async(sd_bus *bus, const char *path, sd_bus_message_handler_t cb, void *userdata);
