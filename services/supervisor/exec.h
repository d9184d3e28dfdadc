/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "container.h"

/* Processes started in a running container (ExecContainer), attaching to a detached tty container
 * (AttachContainer) and listing a container's processes (TopContainer). The shim forks and reaps the
 * process (services/shim/shim-exec.c); we compute its confinement from the container's config.json. */

typedef struct ExecOptions {
        char **args; /* non-empty */
        char **env;  /* "K=V", added to / overriding the container's */
        char *user;  /* "" = the container's */
        char *workdir;
        bool tty, detach;
        uint32_t tty_rows, tty_columns; /* "tty_size": [rows, columns], the pty's size from the start */
} ExecOptions;

void exec_options_done(ExecOptions *o);

/* Parses ExecContainer's options JSON (the only reader of it): {"args": [...], "env": [...], "user": "",
 * "workdir": "", "tty": false, "detach": false}; unknown members are refused. */
int exec_options_parse(const char *json, ExecOptions *ret, char **ret_error);

/* Starts o in the running container c: stdio[i] < 0 = the container's /dev/null; status_fd (or -1)
 * receives "<code> <reason>\n" when the process is reaped by the shim. With o->tty the pty master is
 * returned in *ret_pty. Blocks until the process's execve() (bounded by SHIM_CALL_TIMEOUT_SEC).
 * -errno with a message in *ret_error; -ENOEXEC: the command could not be executed (status fd tells
 * 126/127). */
int container_exec(Container *c, const ExecOptions *o, const int stdio[3], int status_fd, uint32_t *ret_pid,
                   int *ret_pty, char **ret_error);

/* A sealed memfd copy of the shim's binary: the shim is exec'd from it (CVE-2019-5736), once per
 * supervisor start. */
int shim_exe_seal(const char *path);

int method_exec_container(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_attach_container(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_top_container(sd_bus_message *m, void *userdata, sd_bus_error *error);
