/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdint.h>
#include <string.h>

#include "berth-limits.h"
#include "oci-types.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The first byte picks what the registry claimed the bytes are (Content-Type), so the agreement checks
 * between declared and embedded types get fuzzed too. */
static const char *const declared_types[] = {
        NULL,
        MEDIA_TYPE_OCI_INDEX,
        MEDIA_TYPE_OCI_MANIFEST,
        MEDIA_TYPE_DOCKER_LIST,
        MEDIA_TYPE_DOCKER_MANIFEST,
        MEDIA_TYPE_OCI_CONFIG,
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        MEDIA_TYPE_OCI_MANIFEST "; charset=utf-8",
};

static const char *const platforms[] = { "linux/amd64", "linux/arm64", "linux/arm/v7", "linux/386" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(oci_index_freep) OciIndex *index = NULL;
        _cleanup_(oci_manifest_freep) OciManifest *manifest = NULL;
        _cleanup_free_ char *error1 = NULL, *error2 = NULL;
        const char *declared;
        int r1, r2;

        if (size < 1)
                return 0;

        declared = declared_types[data[0] % ELEMENTSOF(declared_types)];
        data++;
        size--;

        r1 = oci_index_parse((const char *) data, size, declared, &index, &error1);
        r2 = oci_manifest_parse((const char *) data, size, declared, &manifest, &error2);

        /* SECURITY: the same bytes must never be both an index and a manifest. */
        if (r1 >= 0 && r2 >= 0)
                abort();
        if ((r1 < 0 && (!error1 || index)) || (r2 < 0 && (!error2 || manifest)))
                abort();

        if (index) {
                for (size_t i = 0; i < index->n_manifests; i++)
                        if (!digest_is_valid(index->manifests[i].digest) ||
                            index->manifests[i].size > BLOB_SIZE_MAX)
                                abort();

                for (size_t i = 0; i < ELEMENTSOF(platforms); i++) {
                        _cleanup_free_ char *error = NULL;
                        Platform p = {};
                        const Descriptor *d = NULL;

                        if (platform_parse(platforms[i], &p, NULL) < 0)
                                abort();
                        if (oci_index_select(index, &p, &d, &error) >= 0) {
                                if (!d || media_type_kind(d->media_type) != MEDIA_KIND_MANIFEST)
                                        abort();
                        } else if (!error)
                                abort();
                        platform_done(&p);
                }
        }

        if (manifest) {
                if (media_type_kind(manifest->config.media_type) != MEDIA_KIND_CONFIG ||
                    manifest->n_layers > LAYERS_MAX)
                        abort();
                for (size_t i = 0; i < manifest->n_layers; i++)
                        if (media_type_kind(manifest->layers[i].media_type) != MEDIA_KIND_LAYER ||
                            media_type_layer_compression(manifest->layers[i].media_type) < 0 ||
                            !digest_is_valid(manifest->layers[i].digest))
                                abort();
        }

        return 0;
}
