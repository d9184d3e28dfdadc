/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* PLACEHOLDER copied from /work/coord/run-contract.md until the engine branch lands: the engine helper
 * owns this header; on merge theirs replaces it. */

#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "berth-error.h"

typedef struct EngineIO {
        int stdio[3];
        bool terminal;
} EngineIO;

typedef struct EngineContainer {
        pid_t init_pid;
        int start_fd;
        int exec_err_fd;
        int pty_master;
} EngineContainer;

int engine_create(int state_dir_fd, JsonNode *spec, const EngineIO *io, EngineContainer *ret,
                  BerthError *err);
