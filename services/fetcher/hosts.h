/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <stdbool.h>

#include "macro.h"

/* Registry host configuration: <config dir>/registries.conf (GKeyFile) plus Docker-style cert
 * directories <config dir>/certs.d/<host>/{ca.crt,client.cert,client.key}, re-read at the start of
 * every job so edits apply without a restart (like containerd's hosts.toml).
 *
 *   [fetcher]
 *   max-concurrent-downloads=3   active blob downloads; the rest wait (1..FETCH_PARALLEL_MAX)
 *   retries=3                    retries after 5xx, 429, connection errors and stalls (0..10)
 *   stall-timeout-sec=60         abort a transfer slower than stall-min-bytes-per-sec for that long
 *                                (5..3600), then retry it
 *   stall-min-bytes-per-sec=1024 (1..1048576)
 *
 *   [registry "127.0.0.1:5000"]
 *   plain-http=true              speak http to this registry (never implied for non-loopback hosts)
 *   skip-verify=false            do not verify the TLS certificate (explicit only)
 *   ca=/etc/…/ca.crt             CA bundle (default: certs.d/<host>/ca.crt if present)
 *   client-cert=/etc/…/c.cert    client certificate, PEM (default: certs.d/<host>/client.cert)
 *   client-key=/etc/…/c.key      its key (default: certs.d/<host>/client.key)
 *   mirrors=https://m1:5000;http://127.0.0.1:5001   tried in order before the registry itself
 *   mirrors-resolve=false        also resolve tags through the mirrors (tags are trust decisions;
 *                                by default only digests are fetched from mirrors)
 *
 * A mirror's own TLS settings come from its own [registry "<mirror host>"] group and certs.d dir.
 * Loopback registries (localhost, 127.0.0.0/8, [::1]) without a group and without certs.d files try
 * https and fall back to plain http when the TLS handshake fails, like containerd does for localhost.
 * Any TLS configuration (group, CA, client cert) makes TLS mandatory. Only a server that does not speak
 * TLS at all is retried over http: a certificate failure is a TLS server, and stays an error. Credentials
 * (basic, or for a token realm) travel over plain http only to a host the admin configured plain-http,
 * never to one found by that fallback.
 *
 * Host names are case-insensitive: group names, certs.d directories, credentials, tokens and the
 * fallback memory are all keyed by the lowercased host, so `Registry.Example` gets the settings of
 * `[registry "registry.example"]` (a group written with capitals is lowercased when read). */

typedef struct FetcherSettings {
        unsigned max_concurrent;
        unsigned retries;
        unsigned stall_timeout_sec;
        unsigned stall_min_bytes;
} FetcherSettings;

typedef struct RegistryEndpoint {
        char *base_url; /* "https://host:port", no trailing slash */
        char *host;     /* "host:port": key for credentials and tokens */
        bool mirror;
        bool resolve;       /* may resolve tags */
        bool http_fallback; /* when the server does not speak TLS at all, retry with http:// */
        bool plain_found;   /* plain http because a loopback host was found not to speak TLS */
        bool plain_allowed; /* plain http is the admin's decision (plain-http=true, http:// mirror) */
        char *ca_file;
        char *client_cert;
        char *client_key;
        bool skip_verify;
} RegistryEndpoint;

typedef struct HostsConfig {
        GKeyFile *keyfile;
        char *config_dir;
        FetcherSettings settings;
} HostsConfig;

/* A missing file is an empty configuration. A broken one is an error (-EBADMSG + message). */
int hosts_config_load(const char *config_dir, HostsConfig **ret, char **ret_error);
HostsConfig *hosts_config_free(HostsConfig *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(HostsConfig *, hosts_config_free);

/* The endpoints to try for registry (a reference's registry part), mirrors first. */
int hosts_config_endpoints(HostsConfig *c, const char *registry, RegistryEndpoint **ret, size_t *ret_n,
                           char **ret_error);
void registry_endpoints_free(RegistryEndpoint *e, size_t n);

/* "docker.io" → "registry-1.docker.io"; otherwise registry itself. */
const char *registry_api_host(const char *registry);
bool host_is_loopback(const char *host);
/* Remember that a loopback host answered plain http, so later jobs skip the TLS attempt. */
void hosts_remember_plain_http(const char *host);
