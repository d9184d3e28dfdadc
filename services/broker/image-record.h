/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "image-store.h"
#include "oci-types.h"

/* One platform of an image, as a pull or an import verified it (everything borrowed). */
typedef struct RecordPlatform {
        const char *manifest_digest;
        const char *manifest_media_type;
        uint64_t manifest_size;
        const Platform *index_platform; /* the index entry's platform; NULL (or os NULL) for none */
        const OciManifest *manifest;
        const OciImageConfig *config;
        bool unpacked; /* the caller has just unpacked it */
} RecordPlatform;

/* The record of image `name` with target (digest, media type, size) for these platforms, merged with
 * the other platforms a stored record of the same target holds (a new target replaces the record). A
 * platform is unpacked when the caller says so, or when the stored record of the name has the same
 * chain unpacked. Nothing is stored: the caller puts the record. */
int image_record_build(ImageStore *store, const char *name, const char *target_digest,
                       const char *target_media_type, uint64_t target_size, const RecordPlatform *platforms,
                       size_t n_platforms, Image **ret);

/* Marks platform (with exactly these chain ids) of the stored record `name` unpacked and stores it, when
 * the record still names target_digest (it may have been removed or re-pulled meanwhile: then there is
 * nothing to mark, and that is no error). */
int image_record_mark_unpacked(ImageStore *store, const char *name, const char *target_digest,
                               const char *platform, char *const *chain_ids);
