/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "macro.h"

/* Image references as users type them, normalised the way docker/containerd do:
 *   busybox                         → docker.io/library/busybox:latest
 *   library/busybox:1.36            → docker.io/library/busybox:1.36
 *   localhost:5000/x/y@sha256:…     → localhost:5000/x/y@sha256:…
 *   host:port/a/b/c:tag@sha256:…    → keeps both tag and digest (the digest wins when pulling)
 * The first path component is a registry host when it contains '.' or ':' or is "localhost".
 * Hosts may be DNS names, IPv4, or [IPv6] with optional :port. Repository components follow the
 * distribution grammar [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*; total name ≤ REPOSITORY_LENGTH_MAX;
 * tags [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; digests as digest.h. */

typedef struct ImageReference {
        char *registry;   /* "docker.io", "localhost:5000", "[::1]:5000" */
        char *repository; /* "library/busybox" */
        char *tag;        /* "latest"; NULL only when a digest was given without a tag */
        char *digest;     /* "sha256:…" or NULL */
} ImageReference;

/* On failure returns -EINVAL and, if ret_error is non-NULL, a malloc'd sentence saying what is wrong
 * ("invalid tag 'a b': tags may contain only …"). */
int image_reference_parse(const char *s, ImageReference **ret, char **ret_error);
ImageReference *image_reference_free(ImageReference *ref);
DEFINE_TRIVIAL_CLEANUP_FUNC(ImageReference *, image_reference_free);

/* "docker.io/library/busybox:latest", "r/x@sha256:…", "r/x:t@sha256:…"; malloc'd. */
char *image_reference_to_string(const ImageReference *ref);
/* "registry/repository" without tag or digest; malloc'd. */
char *image_reference_name(const ImageReference *ref);
/* The host the API is spoken to: "docker.io" maps to "registry-1.docker.io". Not malloc'd. */
const char *image_reference_api_host(const ImageReference *ref);
