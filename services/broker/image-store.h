/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

/* Image metadata: one JSON document per image name under <statedir>/meta/images/, named by the
 * sha256 hex of the normalised name, written atomically (temp file in the same directory, fsync,
 * rename, fsync of the directory), so a kill at any point leaves the old or the new document. */

typedef struct ImageLayer {
        char *digest;
        char *media_type;
        uint64_t size;
        char *diff_id;
} ImageLayer;

typedef struct ImagePlatform {
        char *platform; /* "linux/amd64" */
        char *manifest_digest;
        char *manifest_media_type;
        uint64_t manifest_size;
        char *config_digest;
        char *config_media_type;
        uint64_t config_size;
        ImageLayer *layers;
        size_t n_layers;
        char **chain_ids; /* n_layers entries, NULL-terminated */
        bool unpacked;    /* every chain id committed at the unpacker when the pull ended */
        JsonNode *config; /* object: env, cmd, entrypoint, user, working_dir, labels, created */
} ImagePlatform;

typedef struct Image {
        char *name; /* normalised reference, "docker.io/library/busybox:latest" */
        char *target_digest;
        char *target_media_type;
        uint64_t target_size;
        ImagePlatform *platforms;
        size_t n_platforms;
        uint64_t pulled_at_usec; /* CLOCK_REALTIME */
} Image;

Image *image_free(Image *i);
DEFINE_TRIVIAL_CLEANUP_FUNC(Image *, image_free);
void image_platform_done(ImagePlatform *p);
int image_copy(const Image *src, const char *new_name, Image **ret);

/* Bytes of all distinct blobs the image references. */
uint64_t image_size(const Image *i);
/* "linux/amd64,linux/arm64" (malloc'd). */
char *image_platforms_string(const Image *i);
/* Does the image reference this blob (target, manifest, config or layer)? */
bool image_references_blob(const Image *i, const char *digest);

/* The document (InspectImage returns it). */
JsonNode *image_to_json(const Image *i);
int image_from_json(JsonNode *node, Image **ret, char **ret_error);

typedef struct ImageStore ImageStore;

/* Opens (creating if needed) <state_dir>/meta/images and loads every document; bad documents are
 * logged and skipped. */
int image_store_open(const char *state_dir, ImageStore **ret);
ImageStore *image_store_free(ImageStore *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ImageStore *, image_store_free);

Image *image_store_get(ImageStore *s, const char *name);
/* Sorted by name; the array is malloc'd, the images are borrowed. */
int image_store_list(ImageStore *s, Image ***ret, size_t *ret_n);
size_t image_store_count(ImageStore *s);
/* Writes the document, then takes ownership of *image (replacing any image of that name). */
int image_store_put(ImageStore *s, Image **image);
int image_store_remove(ImageStore *s, const char *name);
