/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "oci-ref.h"
#include "oci-types.h"
#include "transfer.h"

#define PULL_FLAG_ALL_PLATFORMS (UINT64_C(1) << 0)
#define PULL_FLAGS_ALL PULL_FLAG_ALL_PLATFORMS

/* Long calls to the fetcher: it has its own stall timeout, so ours only guards against a lost reply. */
#define PULL_FETCH_TIMEOUT_USEC (6ULL * 3600ULL * 1000000ULL)

/* Starts pulling into transfer t (takes ownership of ref and wanted; wanted NULL = this machine's
 * platform). On failure nothing was started and t is untouched. */
int pull_start(Transfer *t, ImageReference **ref, Platform *wanted);
void pull_cancel(Pull *p);
void pull_free(Pull *p);
/* Does the pull have a FetchBlob of this digest in flight? */
bool pull_fetching(Pull *p, const char *digest);

/* Match callback for the fetcher's unicast Progress signals (installed by brokerd.c). */
int pull_on_fetcher_progress(sd_bus_message *m, void *userdata, sd_bus_error *error);
