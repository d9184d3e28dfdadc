/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "container.h"
#include "seccomp.h"
#include "spec.h"

/* The part of an exec's plan that is the container's own (exec.c): its config.json parsed by the engine's
 * spec reader and its seccomp programs compiled by the engine's loader. Kept per container while its
 * config.json is the same file, unchanged (device, inode, size, mtime, ctime), and its init the same
 * process, so that an exec does not parse and compile them again (about 1.5 ms of an exec). */

#define EXEC_BASE_CACHE_MAX 256U /* containers; the whole cache is dropped when full */

/* c's spec and seccomp programs, valid until the next call. -errno with a message in *ret_error. */
int exec_base_get(Container *c, const Spec **ret_spec, const SeccompPrograms **ret_programs,
                  char **ret_error);
