/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* The flag bits of the public API (org.berth.Broker1), in one place for the broker, which checks them
 * (bus_check_flags: unknown bits are refused), and for every client. Bits are never reused; a new
 * behaviour gets a new bit (STYLE.md rule 8). Methods not listed here take no flags (0). */

/* PullImage(reference, platform, flags) */
#define PULL_FLAG_ALL_PLATFORMS (UINT64_C(1) << 0) /* every platform of an index, not this machine's */
#define PULL_FLAG_NO_UNPACK (UINT64_C(1) << 1)     /* fetch only: no snapshots */
#define PULL_FLAGS_ALL (PULL_FLAG_ALL_PLATFORMS | PULL_FLAG_NO_UNPACK)

/* ImportImage(archive, name, flags) */
#define IMPORT_FLAG_NO_UNPACK (UINT64_C(1) << 0) /* record only; do not start unpacking */
#define IMPORT_FLAGS_ALL IMPORT_FLAG_NO_UNPACK

/* Container.Wait(flags) */
#define WAIT_FLAG_EXIT_ONLY                                                                                 \
        (UINT64_C(1) << 0) /* answer once the exit is known, before a --rm removal ends */
#define WAIT_FLAGS_ALL WAIT_FLAG_EXIT_ONLY

/* PruneContent(flags) */
#define PRUNE_FLAG_ALL_INGESTS (UINT64_C(1) << 0) /* partial downloads of any age, not only stale ones */
#define PRUNE_FLAGS_ALL PRUNE_FLAG_ALL_INGESTS
