/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "extract.h"

typedef struct UnpackerSettings {
        UnpackLimits limits;
        unsigned parallel; /* sandboxed children at once */
} UnpackerSettings;

/* Defaults from berth-limits.h, overridden by <config_dir>/unpacker.conf, group [unpacker]:
 * max-uncompressed-bytes, max-entries, max-parallel. A missing file is fine; a bad value is an error
 * (-EINVAL, logged), so a typo never silently lifts a limit. */
int unpacker_settings_load(const char *config_dir, UnpackerSettings *ret);
