/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Built only while the engine (engine.c, branch `engine`) has not been merged: creation fails cleanly. */
#include <errno.h>
#include <stdio.h>

#include "engine.h"

int engine_create(int state_dir_fd, JsonNode *spec, const EngineIO *io, EngineContainer *ret,
                  BerthError *err) {
        err->error = ENOSYS;
        snprintf(err->message, sizeof(err->message), "this build has no container engine");
        return -ENOSYS;
}
