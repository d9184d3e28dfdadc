/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "berth-limits.h"
#include "macro.h"

/* Registry authentication: WWW-Authenticate challenges (RFC 7235 as registries use it), the
 * distribution token flow (bearer tokens cached per registry host + scope), basic auth, and the stored
 * credentials (docker config.json format: {"auths":{"host":{"auth":"base64(user:secret)"}}}). */

typedef enum AuthScheme {
        AUTH_SCHEME_BASIC,
        AUTH_SCHEME_BEARER,
        _AUTH_SCHEME_MAX,
        _AUTH_SCHEME_INVALID = -EINVAL,
} AuthScheme;

typedef struct AuthChallenge {
        AuthScheme scheme;
        char *realm;
        char *service;
        char *scope;
} AuthChallenge;

/* Parse a WWW-Authenticate value; takes the first challenge whose scheme is Basic or Bearer. A Bearer
 * challenge needs a realm. -EBADMSG on syntax errors, -EOPNOTSUPP when no usable scheme is offered. */
int auth_challenge_parse(const char *header, AuthChallenge *ret);
void auth_challenge_done(AuthChallenge *c);

/* realm?service=…&scope=… with escaping; scope may be NULL (then the challenge's own, if any). Only
 * http(s) realms are accepted. */
int auth_token_url(const AuthChallenge *c, const char *scope, char **ret);
/* Parse a token endpoint response ({"token"|"access_token", "expires_in"}); the token must be a
 * printable header-safe string. */
int auth_token_parse(const char *data, size_t size, char **ret_token, uint64_t *ret_expires_in_sec);

/* "Authorization: Basic base64(user:secret)"; malloc'd. */
char *auth_basic_header(const char *user, const char *secret);
char *auth_bearer_header(const char *token);

/* Is s an acceptable username/secret (non-empty, bounded, no control characters)? */
bool credential_is_valid(const char *s, bool is_username);

/* Token cache, per registry host and scope; and which hosts use Basic. */
typedef struct AuthCache AuthCache;
AuthCache *auth_cache_new(void);
AuthCache *auth_cache_free(AuthCache *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(AuthCache *, auth_cache_free);
/* "Authorization: …" for this host+scope if known and not expired (NULL otherwise); not malloc'd. */
const char *auth_cache_lookup(AuthCache *c, const char *host, const char *scope, uint64_t now_usec);
void auth_cache_put(AuthCache *c, const char *host, const char *scope, const char *header,
                    uint64_t expires_usec);
void auth_cache_forget_host(AuthCache *c, const char *host);

/* Credentials file. Lookups for docker.io also try Docker's historic keys. -ENOENT when none. */
int credentials_load(const char *path, const char *host, char **ret_user, char **ret_secret);
/* Atomically (temp file + rename, 0600) store or remove the entry for host. */
int credentials_store(const char *path, const char *host, const char *user, const char *secret);
int credentials_remove(const char *path, const char *host);
