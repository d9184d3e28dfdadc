/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stddef.h>

#include "macro.h"
#include "request.h"

/* The CNI runtime side (CNI spec 1.0): a network is a plugin list ("conflist"); ADD runs its plugins in
 * order, each one's result the next one's prevResult; DEL runs them in reverse. The plugins are the
 * standard ones (Debian's containernetworking-plugins: bridge, host-local, portmap, firewall, tuning,
 * loopback): berth writes no netlink or iptables code of its own. */

#define CNI_VERSION "1.0.0"
#define CNI_CONFLIST_MAX (64U * 1024U) /* a network's conflist, read from /etc/berth/net.d/ */
#define CNI_PLUGINS_MAX 16U            /* plugins in one list */
#define CNI_RESULT_MAX (1024U * 1024U) /* bytes a plugin may print */
#define CNI_PLUGIN_TIMEOUT_SEC 60      /* a plugin that hangs is killed */
#define CNI_IFNAME "eth0"

typedef struct CniNetwork {
        char *name;
        char *cni_version;
        JsonNode *root;     /* the whole conflist */
        JsonArray *plugins; /* borrowed from root */
        /* What berth reads from the bridge plugin's entry (NULL when the list has none). */
        char *bridge;
        char *subnet;
        char *gateway;
} CniNetwork;

/* Parses and checks a conflist: size cap, a name (valid network name), cniVersion, 1..CNI_PLUGINS_MAX
 * plugins each with a plain "type" found in the plugin directories. */
int cni_network_parse(const char *data, size_t size, CniNetwork **ret, char **ret_error);
CniNetwork *cni_network_free(CniNetwork *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(CniNetwork *, cni_network_free);

typedef struct CniRuntime {
        const char *container_id;
        const char *netns; /* path of the namespace file; "" for a DEL whose namespace is gone */
        const char *ifname;
        const RequestPort *ports; /* runtimeConfig.portMappings for plugins that ask for them */
        size_t n_ports;
        /* Without it, a plugin whose only job is port mappings (capabilities.portMappings, e.g.
         * portmap) is not run for a container that publishes none, in ADD and in DEL alike: it would
         * only add and remove iptables chains (~70 ms ADD, ~130 ms DEL here). A DEL that does not know
         * the ports (the reconciliation of a lease) sets it. */
        bool all_plugins;
} CniRuntime;

/* ADD: *ret_result is the last plugin's result. On failure the plugins that succeeded are DEL'd again
 * before returning (the error names the plugin and carries its message). */
int cni_add(const CniNetwork *n, const CniRuntime *rt, JsonNode **ret_result, char **ret_error);
/* DEL in reverse order; every plugin runs even when one fails (the first error is returned).
 * prev_result: the result ADD returned, or NULL. */
int cni_del(const CniNetwork *n, const CniRuntime *rt, JsonNode *prev_result, char **ret_error);

/* The addresses of a result's container interfaces ("10.88.0.2/16"), as a NULL-terminated strv; what is
 * not an address with a prefix length is left out. */
char **cni_result_addresses(JsonNode *result);

/* The directories plugins are looked up in (CNI_PATH), ':'-separated. */
const char *cni_plugin_path(void);
