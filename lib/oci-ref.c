/* SPDX-License-Identifier: LGPL-2.1-or-later */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf(), stpcpy() */
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "digest.h"
#include "escape.h"
#include "berth-limits.h"
#include "oci-ref.h"

#define DEFAULT_REGISTRY "docker.io"
#define DEFAULT_API_HOST "registry-1.docker.io"
#define OFFICIAL_REPO_PREFIX "library/"
#define DEFAULT_TAG "latest"

/* How much of the user's input we echo back in an error; references may be up to 4 KiB. */

ImageReference *image_reference_free(ImageReference *ref) {
        if (!ref)
                return NULL;

        free(ref->registry);
        free(ref->repository);
        free(ref->tag);
        free(ref->digest);
        return mfree(ref);
}

_printf_(3, 4) static int reference_error(char **ret_error, const char *input, const char *format, ...) {
        _cleanup_free_ char *quoted = NULL, *reason = NULL;
        va_list ap;
        int k;

        if (!ret_error)
                return -EINVAL;

        va_start(ap, format);
        k = vasprintf_safe(&reason, format, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;

        quoted = escape_untrusted(input, QUOTED_INPUT_MAX, ESCAPE_QUOTED);
        if (!quoted)
                return -ENOMEM;

        if (asprintf_safe(ret_error, "invalid reference '%s': %s", quoted, reason) < 0) {
                *ret_error = NULL;
                return -ENOMEM;
        }

        return -EINVAL;
}

static bool is_lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c) {
        return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9] */
static bool domain_component_valid(const char *s, size_t n) {
        if (n == 0)
                return false;
        if (!is_alnum(s[0]) || !is_alnum(s[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_alnum(s[i]) && s[i] != '-')
                        return false;
        return true;
}

/* Returns NULL if valid, else the reason. */
static const char *port_check(const char *s, size_t n) {
        unsigned long v = 0;

        if (n == 0)
                return "empty port";
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return "port must be a decimal number";
        if (n > 5)
                return "port out of range (1-65535)";
        for (size_t i = 0; i < n; i++)
                v = v * 10 + (unsigned long) (s[i] - '0');
        /* SECURITY: credentials and TLS settings are keyed by the registry string, so one host:port must
         * have exactly one spelling; "host:05000" would alias "host:5000". */
        if (s[0] == '0')
                return v == 0 ? "port out of range (1-65535)" : "port must not have leading zeros";
        if (v < 1 || v > 65535)
                return "port out of range (1-65535)";
        return NULL;
}

static const char *registry_check(const char *s) {
        const char *colon, *end;
        size_t hostlen;

        if (isempty(s))
                return "empty registry host";

        if (s[0] == '[') {
                char addr[INET6_ADDRSTRLEN + 1];
                struct in6_addr in6;
                const char *close = strchr(s, ']');

                if (!close)
                        return "unterminated IPv6 address in registry host";
                hostlen = (size_t) (close - s - 1);
                if (hostlen == 0 || hostlen >= sizeof(addr))
                        return "invalid IPv6 address in registry host";
                /* inet_pton also accepts forms the distribution grammar allows (::, embedded IPv4),
                 * but nothing else: no zone ids, no brackets inside. */
                memcpy(addr, s + 1, hostlen);
                addr[hostlen] = '\0';
                for (size_t i = 0; i < hostlen; i++)
                        if (!(is_alnum(addr[i]) || addr[i] == ':' || addr[i] == '.'))
                                return "invalid IPv6 address in registry host";
                if (inet_pton(AF_INET6, addr, &in6) != 1)
                        return "invalid IPv6 address in registry host";

                if (close[1] == '\0')
                        return NULL;
                if (close[1] != ':')
                        return "unexpected characters after IPv6 address in registry host";
                return port_check(close + 2, strlen(close + 2));
        }

        colon = strchr(s, ':');
        end = colon ?: s + strlen(s);
        hostlen = (size_t) (end - s);
        if (hostlen == 0)
                return "empty registry host";

        for (const char *c = s; c < end;) {
                const char *dot = memchr(c, '.', (size_t) (end - c));
                const char *cend = dot ?: end;

                if (!domain_component_valid(c, (size_t) (cend - c)))
                        return "invalid registry host name";
                if (!dot)
                        break;
                c = dot + 1;
                if (c == end)
                        return "invalid registry host name";
        }

        if (colon)
                return port_check(colon + 1, strlen(colon + 1));
        return NULL;
}

/* path-component := [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)* */
static const char *path_component_check(const char *s, size_t n) {
        size_t i = 0;

        if (n == 0)
                return "repository name contains an empty path component";

        for (;;) {
                size_t start = i;

                while (i < n && is_lower_alnum(s[i]))
                        i++;
                if (i == start)
                        return start == 0 ? "path components must start with a lowercase letter or digit"
                                          : "path components may not contain consecutive separators";
                if (i == n)
                        return NULL;

                if (s[i] == '.')
                        i++;
                else if (s[i] == '_') {
                        i++;
                        if (i < n && s[i] == '_')
                                i++;
                } else if (s[i] == '-') {
                        while (i < n && s[i] == '-')
                                i++;
                } else
                        return "repository name may contain only [a-z0-9], '.', '_', '__', '-' and '/'";

                if (i == n)
                        return "path components must end with a lowercase letter or digit";
        }
}

static const char *repository_check(const char *s) {
        if (isempty(s))
                return "empty repository name";

        /* Give the common mistake its own message, as docker does. */
        for (const char *c = s; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                        return "repository name must be lowercase";

        for (const char *c = s;;) {
                const char *slash = strchr(c, '/');
                size_t n = slash ? (size_t) (slash - c) : strlen(c);
                const char *reason = path_component_check(c, n);

                if (reason)
                        return reason;
                if (!slash)
                        return NULL;
                c = slash + 1;
        }
}

static const char *tag_check(const char *s) {
        size_t n = strlen(s);

        if (n == 0)
                return "empty tag";
        if (n > TAG_LENGTH_MAX)
                return "tag longer than 128 characters";
        if (!(is_alnum(s[0]) || s[0] == '_'))
                return "tags must start with a letter, digit or '_'";
        for (size_t i = 1; i < n; i++)
                if (!(is_alnum(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
                        return "tags may contain only letters, digits, '_', '.' and '-'";
        return NULL;
}

static bool is_hex64(const char *s) {
        size_t n = 0;

        for (; *s; s++, n++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
                        return false;
        return n == 64;
}

static bool is_docker_hub(const char *registry) {
        return streq(registry, DEFAULT_REGISTRY) || streq(registry, "index.docker.io") ||
               streq(registry, "registry-1.docker.io");
}

int image_reference_parse(const char *s, ImageReference **ret, char **ret_error) {
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        _cleanup_free_ char *name = NULL, *registry = NULL, *remainder = NULL;
        const char *at, *slash, *colon, *reason;
        size_t len;

        if (ret_error)
                *ret_error = NULL;
        if (!ret)
                return -EINVAL;
        if (!s)
                return reference_error(ret_error, "", "empty reference");

        len = strlen(s);
        if (len == 0)
                return reference_error(ret_error, s, "empty reference");
        if (len > REFERENCE_LENGTH_MAX)
                return reference_error(ret_error, s, "reference longer than %u characters",
                                       REFERENCE_LENGTH_MAX);

        /* An image id is not a name: docker refuses it so that "docker run <id>" cannot be confused
         * with a pull of docker.io/library/<id>. */
        if (is_hex64(s))
                return reference_error(ret_error, s,
                                       "a 64-character hexadecimal string is an image id, not a name");

        ref = calloc(1, sizeof(ImageReference));
        if (!ref)
                return -ENOMEM;

        /* name [":" tag] ["@" digest]: no '@' can occur before the digest. */
        at = strchr(s, '@');
        if (at) {
                if (digest_validate(at + 1, NULL) < 0)
                        return reference_error(ret_error, s,
                                               "invalid digest: expected 'sha256:' + 64 or 'sha512:' + 128 "
                                               "lowercase hex digits");
                ref->digest = strdup(at + 1);
                if (!ref->digest)
                        return -ENOMEM;
                name = strndup(s, (size_t) (at - s));
        } else
                name = strdup(s);
        if (!name)
                return -ENOMEM;
        if (isempty(name))
                return reference_error(ret_error, s, "empty repository name");

        /* The first component is a registry host only if it looks like one; otherwise "foo/bar" is a
         * Docker Hub user repository. Same rule as docker's splitDockerDomain(). */
        slash = strchr(name, '/');
        if (slash) {
                size_t n = (size_t) (slash - name);

                if (memchr(name, '.', n) || memchr(name, ':', n) ||
                    (n == strlen("localhost") && strncmp(name, "localhost", n) == 0)) {
                        registry = strndup(name, n);
                        remainder = strdup(slash + 1);
                }
        }
        if (!registry) {
                registry = strdup(DEFAULT_REGISTRY);
                remainder = strdup(name);
        }
        if (!registry || !remainder)
                return -ENOMEM;

        reason = registry_check(registry);
        if (reason)
                return reference_error(ret_error, s, "%s", reason);

        /* The tag is a ':' after the last '/' of the remainder. */
        slash = strrchr(remainder, '/');
        colon = strchr(slash ?: remainder, ':');
        if (colon) {
                reason = tag_check(colon + 1);
                if (reason)
                        return reference_error(ret_error, s, "%s", reason);
                ref->tag = strdup(colon + 1);
                if (!ref->tag)
                        return -ENOMEM;
                remainder[colon - remainder] = '\0';
        }

        reason = repository_check(remainder);
        if (reason)
                return reference_error(ret_error, s, "%s", reason);

        if (is_docker_hub(registry)) {
                ref->registry = strdup(DEFAULT_REGISTRY);
                /* Single-component names on Docker Hub are official images. */
                if (!strchr(remainder, '/')) {
                        if (asprintf_safe(&ref->repository, OFFICIAL_REPO_PREFIX "%s", remainder) < 0)
                                ref->repository = NULL;
                } else
                        ref->repository = TAKE_PTR(remainder);
        } else {
                ref->registry = TAKE_PTR(registry);
                ref->repository = TAKE_PTR(remainder);
        }
        if (!ref->registry || !ref->repository)
                return -ENOMEM;

        if (strlen(ref->registry) + 1 + strlen(ref->repository) > REPOSITORY_LENGTH_MAX)
                return reference_error(ret_error, s, "repository name longer than %u characters",
                                       REPOSITORY_LENGTH_MAX);

        if (!ref->tag && !ref->digest) {
                ref->tag = strdup(DEFAULT_TAG);
                if (!ref->tag)
                        return -ENOMEM;
        }

        *ret = TAKE_PTR(ref);
        return 0;
}

char *image_reference_to_string(const ImageReference *ref) {
        char *s;

        if (!ref || !ref->registry || !ref->repository)
                return NULL;

        if (asprintf_safe(&s, "%s/%s%s%s%s%s", ref->registry, ref->repository, ref->tag ? ":" : "",
                          ref->tag ?: "", ref->digest ? "@" : "", ref->digest ?: "") < 0)
                return NULL;
        return s;
}

char *image_reference_name(const ImageReference *ref) {
        char *s;

        if (!ref || !ref->registry || !ref->repository)
                return NULL;

        if (asprintf_safe(&s, "%s/%s", ref->registry, ref->repository) < 0)
                return NULL;
        return s;
}

const char *image_reference_api_host(const ImageReference *ref) {
        if (!ref || !ref->registry)
                return NULL;

        /* Docker Hub's name is docker.io, but its registry API lives on another host. */
        if (streq(ref->registry, DEFAULT_REGISTRY))
                return DEFAULT_API_HOST;
        return ref->registry;
}
