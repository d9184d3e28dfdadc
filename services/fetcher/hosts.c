/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* asprintf(), renameat2(), reallocarray() */
#endif
#include <fcntl.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>

#include "hosts.h"
#include "berth-limits.h"
#include "log.h"

static GHashTable *plain_http_hosts = NULL;

void hosts_remember_plain_http(const char *host) {
        if (!plain_http_hosts)
                plain_http_hosts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        if (g_hash_table_size(plain_http_hosts) < 64)
                g_hash_table_add(plain_http_hosts, g_strdup(host));
}

const char *registry_api_host(const char *registry) {
        if (streq(registry, "docker.io"))
                return "registry-1.docker.io";
        return registry;
}

bool host_is_loopback(const char *host) {
        size_t l;

        if (strncmp(host, "[::1]", 5) == 0)
                return host[5] == '\0' || host[5] == ':';
        l = strcspn(host, ":");
        if (l == 9 && strncmp(host, "localhost", 9) == 0)
                return true;
        return strncmp(host, "127.", 4) == 0 && strspn(host, "0123456789.") == l;
}

/* host[:port] as the references grammar allows: DNS names, IPv4, [IPv6]; nothing that could smuggle a
 * path, user info or query into a URL. */
static bool host_is_valid(const char *host) {
        size_t l = strlen(host);

        if (l == 0 || l > 255)
                return false;
        for (const char *p = host; *p; p++)
                if (!g_ascii_isalnum(*p) && !strchr(".-:[]_", *p))
                        return false;
        return true;
}

static int get_uint(GKeyFile *kf, const char *key, unsigned def, unsigned min, unsigned max, unsigned *ret,
                    char **ret_error) {
        g_autoptr(GError) e = NULL;
        gint64 v;

        if (!g_key_file_has_key(kf, "fetcher", key, NULL)) {
                *ret = def;
                return 0;
        }
        v = g_key_file_get_int64(kf, "fetcher", key, &e);
        if (e || v < (gint64) min || v > (gint64) max) {
                if (ret_error)
                        *ret_error =
                                g_strdup_printf("[fetcher] %s must be an integer in %u..%u", key, min, max);
                return -EBADMSG;
        }
        *ret = (unsigned) v;
        return 0;
}

/* SECURITY: host names are case-insensitive (DNS), so settings must not depend on how a reference spells
 * one: `[registry "Registry.Example"]` is read as `[registry "registry.example"]`. Two groups that differ
 * only in case are refused: which one the admin meant cannot be guessed. */
static int lowercase_groups(GKeyFile *kf, char **ret_error) {
        g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);

        for (char **g = groups; g && *g; g++) {
                g_autofree char *lower = NULL;
                g_auto(GStrv) keys = NULL;

                if (!g_str_has_prefix(*g, "registry \""))
                        continue;
                lower = g_ascii_strdown(*g, -1);
                if (streq(lower, *g))
                        continue;
                if (g_key_file_has_group(kf, lower)) {
                        if (ret_error)
                                *ret_error =
                                        g_strdup_printf("[%s] and [%s] name the same registry", *g, lower);
                        return -EBADMSG;
                }
                keys = g_key_file_get_keys(kf, *g, NULL, NULL);
                for (char **k = keys; k && *k; k++) {
                        g_autofree char *v = g_key_file_get_value(kf, *g, *k, NULL);
                        if (v)
                                g_key_file_set_value(kf, lower, *k, v);
                }
                (void) g_key_file_remove_group(kf, *g, NULL);
        }
        return 0;
}

int hosts_config_load(const char *config_dir, HostsConfig **ret, char **ret_error) {
        _cleanup_(hosts_config_freep) HostsConfig *c = NULL;
        g_autoptr(GError) e = NULL;
        g_autofree char *path = NULL;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->config_dir = strdup(config_dir);
        c->keyfile = g_key_file_new();
        if (!c->config_dir)
                return -ENOMEM;

        path = g_build_filename(config_dir, "registries.conf", NULL);
        if (!g_key_file_load_from_file(c->keyfile, path, G_KEY_FILE_NONE, &e)) {
                if (!g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
                        if (ret_error)
                                *ret_error = g_strdup_printf("Failed to parse '%s': %s", path, e->message);
                        return -EBADMSG;
                }
        }

        r = get_uint(c->keyfile, "max-concurrent-downloads", FETCH_PARALLEL_DEFAULT, 1, FETCH_PARALLEL_MAX,
                     &c->settings.max_concurrent, ret_error);
        if (r >= 0)
                r = get_uint(c->keyfile, "retries", FETCH_RETRIES_DEFAULT, 0, RETRIES_MAX,
                             &c->settings.retries, ret_error);
        if (r >= 0)
                r = get_uint(c->keyfile, "stall-timeout-sec", FETCH_STALL_TIMEOUT_SEC_DEFAULT,
                             STALL_TIMEOUT_MIN, STALL_TIMEOUT_MAX, &c->settings.stall_timeout_sec,
                             ret_error);
        if (r >= 0)
                r = get_uint(c->keyfile, "stall-min-bytes-per-sec", FETCH_STALL_MIN_BYTES_DEFAULT, 1,
                             STALL_MIN_BYTES_MAX, &c->settings.stall_min_bytes, ret_error);
        if (r < 0)
                return r;
        r = lowercase_groups(c->keyfile, ret_error);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

HostsConfig *hosts_config_free(HostsConfig *c) {
        if (!c)
                return NULL;
        if (c->keyfile)
                g_key_file_unref(c->keyfile);
        free(c->config_dir);
        return mfree(c);
}

void registry_endpoints_free(RegistryEndpoint *e, size_t n) {
        for (size_t i = 0; e && i < n; i++) {
                free(e[i].base_url);
                free(e[i].host);
                free(e[i].ca_file);
                free(e[i].client_cert);
                free(e[i].client_key);
        }
        free(e);
}

static char *group_name(const char *host) {
        return g_strdup_printf("registry \"%s\"", host);
}

/* A configured path, else the Docker-style file in certs.d/<host>/ if it exists. */
static int tls_file(HostsConfig *c, const char *group, const char *key, const char *host, const char *fname,
                    char **ret, char **ret_error) {
        g_autofree char *v = NULL, *p = NULL;
        struct stat st;

        v = g_key_file_get_string(c->keyfile, group, key, NULL);
        if (v) {
                if (v[0] != '/') {
                        if (ret_error)
                                *ret_error = g_strdup_printf("[%s] %s must be an absolute path", group, key);
                        return -EBADMSG;
                }
                *ret = strdup(v);
                return *ret ? 0 : -ENOMEM;
        }
        p = g_build_filename(c->config_dir, "certs.d", host, fname, NULL);
        if (stat(p, &st) >= 0 && S_ISREG(st.st_mode)) {
                *ret = strdup(p);
                return *ret ? 0 : -ENOMEM;
        }
        *ret = NULL;
        return 0;
}

static int endpoint_fill(HostsConfig *c, RegistryEndpoint *e, const char *scheme, const char *host,
                         bool explicit_scheme, char **ret_error) {
        g_autofree char *group = group_name(host);
        bool has_group = g_key_file_has_group(c->keyfile, group);
        bool plain = false;
        int r;

        if (has_group) {
                plain = g_key_file_get_boolean(c->keyfile, group, "plain-http", NULL);
                e->plain_allowed = plain;
                e->skip_verify = g_key_file_get_boolean(c->keyfile, group, "skip-verify", NULL);
        }
        r = tls_file(c, group, "ca", host, "ca.crt", &e->ca_file, ret_error);
        if (r >= 0)
                r = tls_file(c, group, "client-cert", host, "client.cert", &e->client_cert, ret_error);
        if (r >= 0)
                r = tls_file(c, group, "client-key", host, "client.key", &e->client_key, ret_error);
        if (r < 0)
                return r;
        if (!!e->client_cert != !!e->client_key) {
                if (ret_error)
                        *ret_error = g_strdup_printf(
                                "Registry '%s': client certificate and key must be given together", host);
                return -EBADMSG;
        }

        if (!explicit_scheme) {
                if (plain)
                        scheme = "http";
                else if (!has_group && !e->ca_file && !e->client_cert && host_is_loopback(host)) {
                        /* containerd's localhost rule: https first, plain http if the handshake fails. A
                         * loopback host already seen speaking http skips the TLS attempt. */
                        if (plain_http_hosts && g_hash_table_contains(plain_http_hosts, host)) {
                                scheme = "http";
                                e->plain_found = true;
                        } else
                                e->http_fallback = true;
                }
        }
        e->host = strdup(host);
        e->base_url = g_strdup_printf("%s://%s", scheme, host);
        return e->host ? 0 : -ENOMEM;
}

/* Fills list with the mirrors, then the registry itself; *n counts the entries filled (even on failure,
 * so that the caller frees them). */
static int endpoints_fill(HostsConfig *c, const char *registry, char **mirrors, gsize n_mirrors,
                          bool mirrors_resolve, RegistryEndpoint *list, size_t *n, char **ret_error) {
        int r;

        for (gsize i = 0; i < n_mirrors; i++) {
                const char *m = mirrors[i], *hostpart, *scheme;
                g_autofree char *host = NULL;

                if (strncmp(m, "https://", 8) == 0) {
                        scheme = "https";
                        hostpart = m + 8;
                } else if (strncmp(m, "http://", 7) == 0) {
                        scheme = "http";
                        hostpart = m + 7;
                } else
                        return -EBADMSG;
                host = g_ascii_strdown(hostpart, (gssize) strcspn(hostpart, "/"));
                if (!host_is_valid(host) ||
                    (hostpart[strlen(host)] == '/' && hostpart[strlen(host) + 1] != '\0'))
                        return -EBADMSG;
                r = endpoint_fill(c, &list[*n], scheme, host, true, ret_error);
                (*n)++;
                if (r < 0)
                        return r;
                list[*n - 1].mirror = true;
                list[*n - 1].resolve = mirrors_resolve;
                /* An http:// mirror is the admin's explicit choice of plain http. */
                list[*n - 1].plain_allowed = streq(scheme, "http");
        }

        r = endpoint_fill(c, &list[*n], "https", registry_api_host(registry), false, ret_error);
        (*n)++;
        if (r < 0)
                return r;
        list[*n - 1].resolve = true;
        return 0;
}

int hosts_config_endpoints(HostsConfig *c, const char *registry_in, RegistryEndpoint **ret, size_t *ret_n,
                           char **ret_error) {
        g_autofree char *registry = g_ascii_strdown(registry_in, -1);
        g_autofree char *group = NULL;
        g_auto(GStrv) mirrors = NULL;
        RegistryEndpoint *list;
        gsize n_mirrors = 0;
        size_t n = 0;
        bool mirrors_resolve;
        int r;

        if (!host_is_valid(registry))
                return -EINVAL;
        group = group_name(registry);
        mirrors = g_key_file_get_string_list(c->keyfile, group, "mirrors", &n_mirrors, NULL);
        mirrors_resolve = g_key_file_get_boolean(c->keyfile, group, "mirrors-resolve", NULL);
        if (n_mirrors > MIRRORS_MAX) {
                if (ret_error)
                        *ret_error = g_strdup_printf("[%s] lists more than %u mirrors", group, MIRRORS_MAX);
                return -E2BIG;
        }

        list = calloc(n_mirrors + 1, sizeof(RegistryEndpoint));
        if (!list)
                return -ENOMEM;
        r = endpoints_fill(c, registry, mirrors, n_mirrors, mirrors_resolve, list, &n, ret_error);
        if (r < 0) {
                if (r == -EBADMSG && ret_error && !*ret_error)
                        *ret_error = g_strdup_printf(
                                "[%s] mirrors: each entry must be http(s)://host[:port]", group);
                registry_endpoints_free(list, n);
                return r;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}
