/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "digest.h"
#include "macro.h"

/* OCI image-spec / Docker schema 2 documents, parsed from untrusted bytes with the limits of limits.h.
 * Every parser takes the raw bytes (which the caller already verified against their digest) and fails
 * with -EBADMSG/-EFBIG/-E2BIG/-EMEDIUMTYPE plus a malloc'd message. */

#define MEDIA_TYPE_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MEDIA_TYPE_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MEDIA_TYPE_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MEDIA_TYPE_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define MEDIA_TYPE_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define MEDIA_TYPE_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define MEDIA_TYPE_OCI_LAYER_ND "application/vnd.oci.image.layer.nondistributable.v1.tar"
#define MEDIA_TYPE_OCI_LAYER_ND_GZIP "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
#define MEDIA_TYPE_OCI_LAYER_ND_ZSTD "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
#define MEDIA_TYPE_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MEDIA_TYPE_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MEDIA_TYPE_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MEDIA_TYPE_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
/* Uncompressed Docker layers: not in the schema 2 spec, but written by tools and accepted by containerd. */
#define MEDIA_TYPE_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar"
#define MEDIA_TYPE_DOCKER_LAYER_FOREIGN_GZIP "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

/* The Accept header a client sends for manifests: all four manifest/index types. */
#define MANIFEST_ACCEPT_HEADER                                                                              \
        "Accept: " MEDIA_TYPE_OCI_INDEX ", " MEDIA_TYPE_OCI_MANIFEST ", " MEDIA_TYPE_DOCKER_LIST            \
        ", " MEDIA_TYPE_DOCKER_MANIFEST

typedef enum MediaKind {
        MEDIA_KIND_INDEX,    /* OCI index or Docker manifest list */
        MEDIA_KIND_MANIFEST, /* OCI or Docker schema 2 image manifest */
        MEDIA_KIND_CONFIG,
        MEDIA_KIND_LAYER,
        _MEDIA_KIND_MAX,
        _MEDIA_KIND_INVALID = -EINVAL,
} MediaKind;

typedef enum LayerCompression {
        LAYER_COMPRESSION_NONE,
        LAYER_COMPRESSION_GZIP,
        LAYER_COMPRESSION_ZSTD,
        _LAYER_COMPRESSION_MAX,
        _LAYER_COMPRESSION_INVALID = -EINVAL,
} LayerCompression;

/* Classify a media type; unknown → _MEDIA_KIND_INVALID. */
MediaKind media_type_kind(const char *media_type);
LayerCompression media_type_layer_compression(const char *media_type);

typedef struct Platform {
        char *os;           /* "linux" */
        char *architecture; /* GOARCH spelling: "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64"
                             */
        char *variant;      /* "v7", "v8" or NULL */
        char *os_version;   /* may be NULL */
} Platform;

/* "linux/arm64/v8" → Platform; "linux/amd64" ok; the os may be omitted ("arm64" → linux/arm64). */
int platform_parse(const char *s, Platform *ret, char **ret_error);
/* This machine's platform (uname → GOARCH names, arm variants). */
int platform_default(Platform *ret);
char *platform_to_string(const Platform *p); /* "linux/arm/v7"; malloc'd */
/* Does `candidate` (from an index) satisfy `wanted`? Normalises arm64 variant v8 ↔ none, etc. */
bool platform_matches(const Platform *wanted, const Platform *candidate);
void platform_done(Platform *p);

typedef struct Descriptor {
        char *media_type;
        char *digest; /* validated with digest_validate() */
        uint64_t size;
        Platform platform; /* index entries only; os == NULL when absent */
        bool has_platform;
        char **urls; /* foreign layers; may be NULL */
} Descriptor;
void descriptor_done(Descriptor *d);

typedef struct OciIndex {
        char *media_type;
        Descriptor *manifests;
        size_t n_manifests;
} OciIndex;

typedef struct OciManifest {
        char *media_type;
        Descriptor config;
        Descriptor *layers;
        size_t n_layers;
} OciManifest;

typedef struct OciImageConfig {
        Platform platform;
        char **diff_ids; /* rootfs.diff_ids, one per layer, each a valid digest */
        size_t n_diff_ids;
        char **env;
        char **entrypoint;
        char **cmd;
        char *working_dir;
        char *user;
        char *created;
        char **labels; /* "key=value" */
        char **exposed_ports;
        char *stop_signal;
        /* config.Healthcheck: Test (["CMD", …], ["CMD-SHELL", cmd], ["NONE"]), durations in ns, 0 = unset */
        char **health_test;
        int64_t health_interval, health_timeout, health_start_period, health_retries;
} OciImageConfig;

/* media_type: the type the registry/descriptor declared for the bytes (Content-Type or descriptor);
 * may be NULL, then the document's own "mediaType" decides. Declared and embedded types must agree. */
int oci_index_parse(const char *data, size_t size, const char *media_type, OciIndex **ret, char **ret_error);
int oci_manifest_parse(const char *data, size_t size, const char *media_type, OciManifest **ret,
                       char **ret_error);
int oci_image_config_parse(const char *data, size_t size, OciImageConfig **ret, char **ret_error);
/* Pick the entry for `wanted` from an index; -ENOENT with a message listing available platforms. */
int oci_index_select(const OciIndex *index, const Platform *wanted, const Descriptor **ret,
                     char **ret_error);

OciIndex *oci_index_free(OciIndex *i);
OciManifest *oci_manifest_free(OciManifest *m);
OciImageConfig *oci_image_config_free(OciImageConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(OciIndex *, oci_index_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(OciManifest *, oci_manifest_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(OciImageConfig *, oci_image_config_free);

/* Chain IDs as the OCI image spec defines them: chain[0] = diff_id[0],
 * chain[n] = sha256(chain[n-1] + " " + diff_id[n]). ret receives n strings, malloc'd. */
int oci_chain_ids(char *const *diff_ids, size_t n, char ***ret);
