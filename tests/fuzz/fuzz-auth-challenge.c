/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The registry's WWW-Authenticate header (services/fetcher/auth.c): the parser sees whatever a registry,
 * or anything between us and it, sends in a 401. Whatever it accepts must satisfy what the token flow
 * relies on: a Bearer challenge has a realm, and the token URL built from it is one header-safe line. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "berth-limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_url(const AuthChallenge *c, const char *scope) {
        _cleanup_free_ char *url = NULL;
        int r;

        r = auth_token_url(c, scope, &url);
        if (r < 0) {
                if (url)
                        abort();
                return;
        }
        if (c->scheme != AUTH_SCHEME_BEARER || !url || strncmp(url, c->realm, strlen(c->realm)) != 0)
                abort();
        /* It becomes a request line: no whitespace, no line breaks, no fragment. */
        if (strpbrk(url, " \t\r\n#"))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        AuthChallenge c = {};
        _cleanup_free_ char *header = NULL;
        int r;

        header = strndup((const char *) data, size);
        if (!header)
                return 0;

        r = auth_challenge_parse(header, &c);
        if (r < 0) {
                if (r != -EBADMSG && r != -EOPNOTSUPP)
                        abort();
                /* A refusal leaves nothing allocated behind (ASan's leak check sees the rest). */
                if (c.realm || c.service || c.scope)
                        abort();
                return 0;
        }
        if (strlen(header) > AUTH_CHALLENGE_MAX)
                abort();
        if (c.scheme != AUTH_SCHEME_BASIC && c.scheme != AUTH_SCHEME_BEARER)
                abort();
        if (c.scheme == AUTH_SCHEME_BEARER && (!c.realm || !*c.realm))
                abort();

        check_url(&c, NULL);
        check_url(&c, "repository:library/busybox:pull");
        check_url(&c, "repository:a b&c=d#e:pull");

        auth_challenge_done(&c);
        auth_challenge_done(&c); /* idempotent */
        return 0;
}
