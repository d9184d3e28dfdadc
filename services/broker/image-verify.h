/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "oci-types.h"

/* Checks shared by pulls (pull.c) and imports (broker-archive.c). Each returns < 0 with a one-line
 * message for the user in *ret_error. */

/* Reads a small blob (manifest, index, config) from the fd the fetcher passed: a regular file of the
 * announced size, at most max bytes, whose content hashes to digest. SECURITY: the broker never trusts
 * the fetcher's word for what the bytes are. Returns the bytes NUL-terminated. */
int image_read_verified(int fd, const char *digest, uint64_t size, uint64_t max, char **ret,
                        char **ret_error);
/* A manifest the broker accepts: at most LAYERS_MAX layers, an image config of at most CONFIG_SIZE_MAX. */
int image_check_manifest(const OciManifest *mf, const char *digest, char **ret_error);
/* A config that fits its manifest: one diff_id per layer, layer media types we unpack, sizes in limits. */
int image_check_config(const OciManifest *mf, const char *digest, const OciImageConfig *c, char **ret_error);
