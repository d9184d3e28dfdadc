/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "berth-flags.h"
#include "image-store.h"
#include "oci-ref.h"
#include "oci-types.h"
#include "transfer.h"

/* Internal: the transfer flags of an UnpackImage transfer (never accepted from a caller), so that
 * transfer_find_running() never mixes up an unpack with a pull of the same reference. */
#define TRANSFER_FLAG_UNPACK_ONLY (UINT64_C(1) << 63)

/* Long calls to the fetcher: it has its own stall timeout, so ours only guards against a lost reply. */
#define PULL_FETCH_TIMEOUT_USEC (6ULL * 3600ULL * 1000000ULL)

/* Starts pulling into transfer t (takes ownership of ref and wanted; wanted NULL = this machine's
 * platform). On failure nothing was started and t is untouched. */
int pull_start(Transfer *t, ImageReference **ref, Platform *wanted);
/* Match callback for the fetcher's unicast Progress signals (installed by brokerd.c). */
int pull_on_fetcher_progress(sd_bus_message *m, void *userdata, sd_bus_error *error);
