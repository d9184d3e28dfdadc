/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "image-store.h"
#include "oci-ref.h"
#include "oci-types.h"
#include "transfer.h"

#define PULL_FLAG_ALL_PLATFORMS (UINT64_C(1) << 0)
#define PULL_FLAG_NO_UNPACK (UINT64_C(1) << 1) /* fetch only: no snapshots */
#define PULL_FLAGS_ALL (PULL_FLAG_ALL_PLATFORMS | PULL_FLAG_NO_UNPACK)
/* Internal: the transfer flags of an UnpackImage transfer (never accepted from a caller), so that
 * transfer_find_running() never mixes up an unpack with a pull of the same reference. */
#define TRANSFER_FLAG_UNPACK_ONLY (UINT64_C(1) << 63)

/* Long calls to the fetcher: it has its own stall timeout, so ours only guards against a lost reply. */
#define PULL_FETCH_TIMEOUT_USEC (6ULL * 3600ULL * 1000000ULL)

/* Starts pulling into transfer t (takes ownership of ref and wanted; wanted NULL = this machine's
 * platform). On failure nothing was started and t is untouched. */
int pull_start(Transfer *t, ImageReference **ref, Platform *wanted);
/* UnpackImage: unpacks platform ip of the recorded image img into transfer t from the content store
 * (OpenBlob; a missing layer fails the transfer), then marks that platform unpacked in the record. The
 * arguments are copied. On failure nothing was started and t is untouched. */
int pull_start_unpack(Transfer *t, const Image *img, const ImagePlatform *ip);

/* Match callback for the fetcher's unicast Progress signals (installed by brokerd.c). */
int pull_on_fetcher_progress(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* Shared with archive imports (broker-archive.c): the pull's own verification, checks and record. */
int pull_read_verified(int fd, const char *digest, uint64_t size, uint64_t max, char **ret,
                       char **ret_error);
int pull_check_manifest(const OciManifest *mf, const char *digest, char **ret_error);
int pull_check_config(const OciManifest *mf, const char *digest, const OciImageConfig *c, char **ret_error);
/* The record a pull of name would write for this one platform (merged with the platforms an existing
 * record of the same target holds). index_platform: the index entry's platform, NULL for none. */
int pull_build_image_record(Manager *m, const char *name, const char *target_digest,
                            const char *target_media_type, uint64_t target_size, const char *manifest_digest,
                            const char *manifest_media_type, uint64_t manifest_size,
                            const Platform *index_platform, OciManifest *manifest, OciImageConfig *config,
                            Image **ret);
