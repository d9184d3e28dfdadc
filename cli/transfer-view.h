/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Calls a broker method returning a transfer ("sst" reference, platform, flags → "o": PullImage,
 * UnpackImage) and follows the transfer until it ends, with images pull's progress output; verb names
 * the command in messages. silent: errors only, no progress and no final 'REF: DIGEST' line. */
int transfer_view_run(const char *verb, const char *method, const char *reference, const char *platform,
                      uint64_t flags, bool silent);
