/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "hosts.h"

/* The distribution API as far as pulling goes: endpoint URLs, Accept headers, scopes, error bodies. */

/* {base}/v2/ — the ping endpoint Login uses. */
char *registry_ping_url(const RegistryEndpoint *e);
/* {base}/v2/<repository>/manifests/<reference>[?ns=<registry>] (ns only for mirrors, as containerd). */
char *registry_manifest_url(const RegistryEndpoint *e, const char *registry, const char *repository,
                            const char *reference);
/* {base}/v2/<repository>/blobs/<digest>[?ns=<registry>] */
char *registry_blob_url(const RegistryEndpoint *e, const char *registry, const char *repository,
                        const char *digest);
/* "repository:<repository>:pull" */
char *registry_pull_scope(const char *repository);

/* Is this one of the four manifest / index media types? */
bool media_type_is_manifest(const char *media_type);
/* A Content-Type value without parameters and surrounding blanks; malloc'd. */
char *content_type_essence(const char *content_type);

/* A one-line summary of a distribution error body ({"errors":[{"code","message"}]}), e.g.
 * "MANIFEST_UNKNOWN: manifest unknown"; NULL if the body is not one. Control characters are
 * replaced, the result is short. */
char *registry_error_summary(const char *body, size_t size);

/* The bytes "N" of "bytes N-M/T" (Content-Range of a 206); -EBADMSG if malformed. */
int content_range_start(const char *value, unsigned long long *ret);
