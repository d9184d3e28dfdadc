/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* PLACEHOLDER until the engine branch lands (it owns this header): an (errno, message) record that
 * crosses process boundaries as is. */
#define BERTH_ERROR_MESSAGE_MAX 512

typedef struct BerthError {
        int error;
        char message[BERTH_ERROR_MESSAGE_MAX];
} BerthError;
