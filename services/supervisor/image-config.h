/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "oci-types.h"

/* The image config named by a request: opened by digest from the content store, which the
 * unprivileged fetcher wrote, so RE-HASHED here before a byte of it is used. Its rootfs.diff_ids give
 * the chain ids; every snapshot of the chain must be committed; its platform must be this machine's. */

typedef struct ImageInfo {
        OciImageConfig *config;
        char **chain_hexes; /* committed snapshots, top layer first */
        size_t n_layers;
} ImageInfo;

/* -ENOENT (not in the store / snapshot missing), -EBADMSG (digest mismatch, bad config),
 * -EMEDIUMTYPE (another platform), with a message. */
int image_info_load(int content_fd, int snapshots_fd, const char *digest, ImageInfo *ret, char **ret_error);
void image_info_done(ImageInfo *i);
