/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf(), renameat2(), reallocarray() */
#endif
#include <fcntl.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>

#include "auth.h"
#include "erase-util.h"
#include "fs-util.h"
#include "json-util.h"
#include "berth-limits.h"
#include "log.h"

static inline const char *strempty(const char *s) {
        return s ?: "";
}

/* ---- WWW-Authenticate ---------------------------------------------------------------------------- */

static bool is_tchar(char c) {
        return g_ascii_isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ows(const char *p) {
        while (*p == ' ' || *p == '\t')
                p++;
        return p;
}

void auth_challenge_done(AuthChallenge *c) {
        if (!c)
                return;
        c->realm = mfree(c->realm);
        c->service = mfree(c->service);
        c->scope = mfree(c->scope);
}

static int parse_value(const char **p, char **ret) {
        const char *s = *p;
        GString *v;

        if (*s == '"') {
                v = g_string_new(NULL);
                for (s++; *s != '"'; s++) {
                        if (*s == '\0' || (unsigned char) *s < 0x20 || *s == 0x7f) {
                                g_string_free(v, TRUE);
                                return -EBADMSG;
                        }
                        if (*s == '\\') {
                                s++;
                                if (*s == '\0' || (unsigned char) *s < 0x20) {
                                        g_string_free(v, TRUE);
                                        return -EBADMSG;
                                }
                        }
                        g_string_append_c(v, *s);
                }
                *p = s + 1;
                *ret = g_string_free(v, FALSE);
                return 0;
        }
        while (is_tchar(*s) || *s == '/' || *s == ':')
                s++;
        if (s == *p)
                return -EBADMSG;
        *ret = g_strndup(*p, (size_t) (s - *p));
        *p = s;
        return 0;
}

int auth_challenge_parse(const char *header, AuthChallenge *ret) {
        const char *p = header;

        if (!header || strlen(header) > AUTH_CHALLENGE_MAX)
                return -EBADMSG;

        for (;;) {
                AuthChallenge c = { .scheme = _AUTH_SCHEME_INVALID };
                const char *start;
                bool wanted;

                while (*p == ' ' || *p == '\t' || *p == ',')
                        p++;
                if (*p == '\0')
                        return -EOPNOTSUPP;
                start = p;
                while (is_tchar(*p))
                        p++;
                if (p == start || (*p != ' ' && *p != '\t' && *p != '\0' && *p != ','))
                        return -EBADMSG;
                if ((size_t) (p - start) == 5 && strncasecmp(start, "Basic", 5) == 0)
                        c.scheme = AUTH_SCHEME_BASIC;
                else if ((size_t) (p - start) == 6 && strncasecmp(start, "Bearer", 6) == 0)
                        c.scheme = AUTH_SCHEME_BEARER;
                wanted = c.scheme >= 0;

                /* auth-params until the next scheme (a token not followed by '='). */
                for (;;) {
                        const char *name, *save;
                        size_t nl;
                        char **target = NULL;
                        _cleanup_free_ char *value = NULL;
                        int r;

                        while (*p == ' ' || *p == '\t' || *p == ',')
                                p++;
                        if (*p == '\0')
                                break;
                        save = p;
                        name = p;
                        while (is_tchar(*p))
                                p++;
                        nl = (size_t) (p - name);
                        if (nl == 0) {
                                auth_challenge_done(&c);
                                return -EBADMSG;
                        }
                        p = skip_ows(p);
                        if (*p != '=') {
                                p = save; /* the next challenge's scheme */
                                break;
                        }
                        p = skip_ows(p + 1);
                        r = parse_value(&p, &value);
                        if (r < 0) {
                                auth_challenge_done(&c);
                                return r;
                        }
                        p = skip_ows(p);
                        if (*p != ',' && *p != '\0') {
                                auth_challenge_done(&c);
                                return -EBADMSG;
                        }
                        if (nl == 5 && strncasecmp(name, "realm", 5) == 0)
                                target = &c.realm;
                        else if (nl == 7 && strncasecmp(name, "service", 7) == 0)
                                target = &c.service;
                        else if (nl == 5 && strncasecmp(name, "scope", 5) == 0)
                                target = &c.scope;
                        if (target && wanted) {
                                if (*target) { /* a repeated parameter is ambiguous: refuse */
                                        auth_challenge_done(&c);
                                        return -EBADMSG;
                                }
                                *target = TAKE_PTR(value);
                        }
                }

                if (!wanted)
                        continue;
                if (c.scheme == AUTH_SCHEME_BEARER && isempty(c.realm)) {
                        auth_challenge_done(&c);
                        return -EBADMSG;
                }
                *ret = c;
                return 0;
        }
}

int auth_token_url(const AuthChallenge *c, const char *scope, char **ret) {
        g_autofree char *service = NULL, *escaped_scope = NULL;
        const char *sep;

        if (c->scheme != AUTH_SCHEME_BEARER || !c->realm)
                return -EINVAL;
        /* SECURITY: the realm comes from the registry; only http(s), nothing else curl could speak. */
        if (strncasecmp(c->realm, "https://", 8) != 0 && strncasecmp(c->realm, "http://", 7) != 0)
                return -EPROTONOSUPPORT;
        if (strpbrk(c->realm, " \t\r\n#"))
                return -EINVAL;
        scope = scope ?: c->scope;
        sep = strchr(c->realm, '?') ? "&" : "?";
        if (c->service)
                service = g_uri_escape_string(c->service, NULL, FALSE);
        if (scope)
                escaped_scope = g_uri_escape_string(scope, NULL, FALSE);
        *ret = g_strdup_printf("%s%s%s%s%s%s%s", c->realm, sep, service ? "service=" : "", strempty(service),
                               service && escaped_scope ? "&" : "", escaped_scope ? "scope=" : "",
                               strempty(escaped_scope));
        return 0;
}

static bool token_is_valid(const char *t) {
        size_t l = strlen(t);

        if (l == 0 || l > AUTH_TOKEN_MAX)
                return false;
        /* SECURITY: it goes into a header line; no spaces, no CR/LF, nothing outside printable ASCII. */
        for (; *t; t++)
                if ((unsigned char) *t <= 0x20 || (unsigned char) *t >= 0x7f)
                        return false;
        return true;
}

typedef struct TokenResponse {
        char *token;
        char *access_token;
        int64_t expires_in;
} TokenResponse;

int auth_token_parse(const char *data, size_t size, char **ret_token, uint64_t *ret_expires_in_sec) {
        static const JsonField table[] = {
                { "token", JSON_FIELD_STRING, offsetof(TokenResponse, token), JSON_NULLABLE },
                { "access_token", JSON_FIELD_STRING, offsetof(TokenResponse, access_token), JSON_NULLABLE },
                { "expires_in", JSON_FIELD_INT64, offsetof(TokenResponse, expires_in), JSON_NULLABLE },
                {},
        };
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_free_ char *error = NULL;
        TokenResponse t = {};
        char *token;
        int r;

        r = json_parse_bounded(data, size, TOKEN_RESPONSE_MAX, &root, &error);
        if (r < 0)
                return r;
        if (!JSON_NODE_HOLDS_OBJECT(root))
                return -EBADMSG;
        r = json_dispatch(json_node_get_object(root), table, &t, NULL, &error);
        if (r >= 0) {
                /* Docker's spec: "token" wins, "access_token" is the OAuth2 spelling of the same. */
                token = !isempty(t.token) ? t.token : t.access_token;
                if (!token || !token_is_valid(token))
                        r = -EBADMSG;
                else {
                        *ret_token = strdup(token);
                        if (!*ret_token)
                                r = -ENOMEM;
                        /* Docker's default is 60 s; cap what we believe at an hour. */
                        *ret_expires_in_sec = t.expires_in <= 0     ? 60
                                              : t.expires_in > 3600 ? 3600
                                                                    : (uint64_t) t.expires_in;
                }
        }
        erase_and_free(t.token);
        erase_and_free(t.access_token);
        return r;
}

char *auth_basic_header(const char *user, const char *secret) {
        _cleanup_erase_ char *plain = g_strdup_printf("%s:%s", user, secret);
        _cleanup_erase_ char *b64 = g_base64_encode((const guchar *) plain, strlen(plain));

        return g_strdup_printf("Authorization: Basic %s", b64);
}

char *auth_bearer_header(const char *token) {
        return g_strdup_printf("Authorization: Bearer %s", token);
}

bool credential_is_valid(const char *s, bool is_username) {
        size_t l = s ? strlen(s) : 0;

        if (l == 0 || l > CREDENTIAL_LENGTH_MAX)
                return false;
        for (; *s; s++) {
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return false;
                if (is_username && *s == ':') /* basic auth splits at the first colon */
                        return false;
        }
        return true;
}

/* ---- token cache ------------------------------------------------------------------------------- */

typedef struct CachedAuth {
        char *header;
        uint64_t expires_usec;
} CachedAuth;

struct AuthCache {
        GHashTable *entries; /* "host\nscope" → CachedAuth */
};

static void cached_auth_free(gpointer p) {
        CachedAuth *a = p;

        erase_and_free(a->header);
        g_free(a);
}

AuthCache *auth_cache_new(void) {
        AuthCache *c = g_new0(AuthCache, 1);

        c->entries = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, cached_auth_free);
        return c;
}

AuthCache *auth_cache_free(AuthCache *c) {
        if (!c)
                return NULL;
        g_hash_table_destroy(c->entries);
        g_free(c);
        return NULL;
}

const char *auth_cache_lookup(AuthCache *c, const char *host, const char *scope, uint64_t now_usec) {
        g_autofree char *key = g_strdup_printf("%s\n%s", host, strempty(scope));
        CachedAuth *a = g_hash_table_lookup(c->entries, key);

        if (!a)
                return NULL;
        if (a->expires_usec != 0 && a->expires_usec <= now_usec) {
                g_hash_table_remove(c->entries, key);
                return NULL;
        }
        return a->header;
}

void auth_cache_put(AuthCache *c, const char *host, const char *scope, const char *header,
                    uint64_t expires_usec) {
        CachedAuth *a;

        if (g_hash_table_size(c->entries) >= 1024) /* bounded: drop everything rather than grow */
                g_hash_table_remove_all(c->entries);
        a = g_new0(CachedAuth, 1);
        a->header = g_strdup(header);
        a->expires_usec = expires_usec;
        g_hash_table_replace(c->entries, g_strdup_printf("%s\n%s", host, strempty(scope)), a);
}

static gboolean key_has_host(gpointer key, gpointer value, gpointer userdata) {
        const char *host = userdata;
        size_t l = strlen(host);

        return strncmp(key, host, l) == 0 && ((const char *) key)[l] == '\n';
}

void auth_cache_forget_host(AuthCache *c, const char *host) {
        g_hash_table_foreach_remove(c->entries, key_has_host, (gpointer) host);
}

/* ---- credentials file -------------------------------------------------------------------------- */

static int read_credentials_file(const char *path, JsonNode **ret) {
        _cleanup_close_ int fd = -EBADF;
        char *buf = NULL;
        _cleanup_free_ char *error = NULL;
        size_t done = 0;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return -errno;
        r = read_regular_file_fd(fd, CREDENTIALS_FILE_MAX, &buf, &done);
        if (r < 0)
                return r;
        if (done == 0) {
                free(buf);
                *ret = NULL;
                return 0;
        }
        r = json_parse_bounded(buf, done, CREDENTIALS_FILE_MAX, ret, &error);
        /* The file is every stored credential in base64: wiped. (json-glib's own copies of the strings
         * are freed without wiping; they live only until the caller drops the tree.) */
        erase_and_free_buffer(buf, done);
        return r;
}

static JsonObject *auths_object(JsonNode *root) {
        JsonNode *n;

        if (!root || !JSON_NODE_HOLDS_OBJECT(root))
                return NULL;
        n = json_object_get_member(json_node_get_object(root), "auths");
        if (!n || !JSON_NODE_HOLDS_OBJECT(n))
                return NULL;
        return json_node_get_object(n);
}

static int entry_decode(JsonObject *auths, const char *key, char **ret_user, char **ret_secret) {
        JsonNode *n = json_object_get_member(auths, key), *a;
        guchar *raw = NULL;
        _cleanup_erase_ char *plain = NULL;
        gsize len = 0;
        const char *s, *colon;

        if (!n || !JSON_NODE_HOLDS_OBJECT(n))
                return -ENOENT;
        a = json_object_get_member(json_node_get_object(n), "auth");
        if (!a || !JSON_NODE_HOLDS_VALUE(a) || json_node_get_value_type(a) != G_TYPE_STRING)
                return -ENOENT;
        s = json_node_get_string(a);
        if (strlen(s) > 4 * CREDENTIAL_LENGTH_MAX)
                return -EBADMSG;
        raw = g_base64_decode(s, &len);
        if (!raw)
                return -EBADMSG;
        /* Copied, not g_realloc()ed, to add the NUL: a realloc may free the old block unwiped. */
        plain = memchr(raw, '\0', len) ? NULL : strndup((const char *) raw, len);
        raw = erase_and_free_buffer(raw, len);
        if (!plain)
                return -EBADMSG;
        colon = strchr(plain, ':');
        if (!colon)
                return -EBADMSG;
        *ret_user = strndup(plain, (size_t) (colon - plain));
        *ret_secret = strdup(colon + 1);
        if (!*ret_user || !*ret_secret) {
                *ret_user = mfree(*ret_user);
                *ret_secret = erase_and_free(*ret_secret);
                return -ENOMEM;
        }
        return 0;
}

int credentials_load(const char *path, const char *host, char **ret_user, char **ret_secret) {
        static const char *const docker_keys[] = { "docker.io", "https://index.docker.io/v1/",
                                                   "index.docker.io", "registry-1.docker.io" };
        _cleanup_json_node_ JsonNode *root = NULL;
        JsonObject *auths;
        int r;

        r = read_credentials_file(path, &root);
        if (r < 0)
                return r;
        auths = auths_object(root);
        if (!auths)
                return -ENOENT;
        r = entry_decode(auths, host, ret_user, ret_secret);
        if (r != -ENOENT)
                return r;
        if (streq(host, "docker.io") || streq(host, "registry-1.docker.io"))
                for (size_t i = 0; i < ELEMENTSOF(docker_keys); i++) {
                        r = entry_decode(auths, docker_keys[i], ret_user, ret_secret);
                        if (r != -ENOENT)
                                return r;
                }
        return -ENOENT;
}

static int write_atomic(const char *path, const char *data) {
        g_autofree char *dir = g_path_get_dirname(path);
        g_autofree char *base = g_path_get_basename(path);
        _cleanup_close_ int dir_fd = -EBADF;

        if (g_mkdir_with_parents(dir, 0700) < 0)
                return -errno;
        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return -errno;
        return write_file_atomic_at(dir_fd, base, data, strlen(data), 0600);
}

static int credentials_update(const char *path, const char *host, const char *user, const char *secret) {
        _cleanup_json_node_ JsonNode *root = NULL;
        g_autoptr(JsonGenerator) gen = NULL;
        _cleanup_erase_ char *out = NULL;
        JsonObject *auths;
        int r;

        r = read_credentials_file(path, &root);
        if (r < 0 && r != -ENOENT)
                return r;
        if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
                if (root)
                        json_node_unref(root);
                root = json_node_init_object(json_node_alloc(), json_object_new());
        }
        auths = auths_object(root);
        if (!auths) {
                json_object_set_object_member(json_node_get_object(root), "auths", json_object_new());
                auths = auths_object(root);
        }
        if (user) {
                _cleanup_erase_ char *plain = g_strdup_printf("%s:%s", user, secret);
                _cleanup_erase_ char *b64 = g_base64_encode((const guchar *) plain, strlen(plain));
                JsonObject *entry = json_object_new();

                json_object_set_string_member(entry, "auth", b64);
                json_object_set_object_member(auths, host, entry);
        } else {
                if (!json_object_has_member(auths, host))
                        return -ENOENT;
                json_object_remove_member(auths, host);
        }

        gen = json_generator_new();
        json_generator_set_root(gen, root);
        json_generator_set_pretty(gen, TRUE);
        out = json_generator_to_data(gen, NULL);
        return write_atomic(path, out);
}

int credentials_store(const char *path, const char *host, const char *user, const char *secret) {
        return credentials_update(path, host, user, secret);
}

int credentials_remove(const char *path, const char *host) {
        return credentials_update(path, host, NULL, NULL);
}
