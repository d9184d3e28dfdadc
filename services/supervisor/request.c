/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <ctype.h>
#include <glib.h>
#include <stdio.h>
#include <sys/capability.h>

#include "digest.h"
#include "json-util.h"
#include "health-config.h"
#include "request.h"
#include "restart-parse.h"

static void strv_freep_(char ***l) {
        g_strfreev(*l);
        *l = NULL;
}

ContainerRequest *container_request_free(ContainerRequest *r) {
        if (!r)
                return NULL;
        free(r->name);
        free(r->image_config);
        strv_freep_(&r->entrypoint);
        strv_freep_(&r->cmd);
        strv_freep_(&r->env);
        free(r->workdir);
        free(r->user);
        free(r->hostname);
        health_config_free(r->health);
        strv_freep_(&r->cap_add);
        strv_freep_(&r->cap_drop);
        for (size_t i = 0; i < r->n_mounts; i++)
                free(r->mounts[i].destination);
        free(r->mounts);
        free(r->restart);
        free(r->network);
        for (size_t i = 0; i < r->n_ports; i++) {
                free(r->ports[i].host_ip);
                free(r->ports[i].protocol);
        }
        free(r->ports);
        strv_freep_(&r->dns);
        strv_freep_(&r->add_hosts);
        free(r);
        return NULL;
}

static bool has_control(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

bool env_entry_is_valid(const char *e) {
        const char *eq = strchr(e, '=');

        /* SECURITY: no control bytes at all (S14: a newline in a value was used to inject passwd lines;
         * tested with real bytes). The name must be non-empty and free of '='. */
        return eq && eq != e && !has_control(e) && strlen(e) <= REQUEST_STRINGS_BYTES_MAX;
}

bool hostname_is_valid(const char *h) {
        size_t n = strlen(h);

        if (n == 0 || n > REQUEST_HOSTNAME_MAX || h[0] == '.' || h[0] == '-' || h[n - 1] == '.' ||
            h[n - 1] == '-')
                return false;
        for (const char *p = h; *p; p++) {
                if (!(isascii(*p) && (isalnum(*p) || *p == '-' || *p == '.')))
                        return false;
                if (*p == '.' && p[1] == '.')
                        return false;
        }
        return true;
}

bool container_path_is_valid(const char *p) {
        if (!p || p[0] != '/' || strlen(p) > REQUEST_PATH_MAX || has_control(p))
                return false;
        for (const char *c = p; *c;) {
                size_t len;

                while (*c == '/')
                        c++;
                len = strcspn(c, "/");
                if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                c += len;
        }
        return true;
}

int capability_from_name(const char *name) {
        cap_value_t v;
        g_autofree char *lower = g_ascii_strdown(name, -1);

        if (!g_str_has_prefix(lower, "cap_") || cap_from_name(lower, &v) < 0 || v < 0 ||
            (unsigned) v >= (unsigned) cap_max_bits())
                return -EINVAL;
        /* libcap also accepts numbers ("cap_from_name("12")"): only names count here. */
        for (const char *c = lower + 4; *c; c++)
                if (!(islower(*c) || *c == '_'))
                        return -EINVAL;
        return (int) v;
}

int capability_normalise(const char *name, char **ret) {
        g_autofree char *full = NULL;

        if (g_ascii_strcasecmp(name, "all") == 0) {
                *ret = strdup("ALL");
                return *ret ? 0 : -ENOMEM;
        }
        full = g_ascii_strncasecmp(name, "cap_", 4) == 0 ? g_strdup(name) : g_strconcat("cap_", name, NULL);
        if (capability_from_name(full) < 0)
                return -EINVAL;
        *ret = g_ascii_strup(full, -1);
        return 0;
}

/* ---- custom dispatchers ------------------------------------------------------------------------ */

static int dispatch_caps(JsonNode *node, void *target, void *userdata, char **ret_error) {
        char ***caps = target;
        JsonArray *a;
        guint n;

        if (!JSON_NODE_HOLDS_ARRAY(node))
                return json_set_error(ret_error, EBADMSG, "must be an array of capability names");
        a = json_node_get_array(node);
        n = json_array_get_length(a);
        if (n > REQUEST_CAPS_MAX)
                return json_set_error(ret_error, E2BIG, "more than %u entries", REQUEST_CAPS_MAX);
        g_strfreev(*caps);
        *caps = g_new0(char *, n + 1);
        for (guint i = 0; i < n; i++) {
                JsonNode *e = json_array_get_element(a, i);
                const char *s = JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_STRING
                                        ? json_node_get_string(e)
                                        : NULL;
                if (!s || strlen(s) > 64 || capability_normalise(s, &(*caps)[i]) < 0)
                        return json_set_error(ret_error, EINVAL, "unknown capability '%.64s'", strna(s));
        }
        return 0;
}

static int dispatch_choice(JsonNode *node, bool *target, const char *off, const char *on, char **ret_error) {
        const char *s = JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING
                                ? json_node_get_string(node)
                                : NULL;

        if (s && streq(s, off))
                *target = false;
        else if (s && streq(s, on))
                *target = true;
        else
                return json_set_error(ret_error, EINVAL, "must be \"%s\" or \"%s\"", off, on);
        return 0;
}

static int dispatch_seccomp(JsonNode *node, void *target, void *userdata, char **ret_error) {
        return dispatch_choice(node, target, "default", "unconfined", ret_error);
}

static int check_known(JsonObject *o, const JsonField table[], char **ret_error);

bool network_name_is_valid(const char *n) {
        /* CNI's rule for network names; they also name files under /etc/berth/net.d/. */
        return n && strlen(n) <= REQUEST_NETWORK_NAME_MAX && container_name_is_valid(n);
}

bool ip_address_is_valid(const char *s) {
        unsigned char buf[sizeof(struct in6_addr)];

        return s && (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1);
}

const char *request_port_host_ip(const RequestPort *p) {
        return isempty(p->host_ip) ? "127.0.0.1" : p->host_ip;
}

static int dispatch_net(JsonNode *node, void *target, void *userdata, char **ret_error) {
        ContainerRequest *req = userdata;
        const char *s = JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING
                                ? json_node_get_string(node)
                                : NULL;

        if (!s)
                return json_set_error(ret_error, EBADMSG, "must be a string");
        req->net_host = streq(s, "host");
        req->net_none = streq(s, "none");
        free(req->network);
        req->network = NULL;
        if (req->net_host || req->net_none)
                return 0;
        if (!network_name_is_valid(s))
                return json_set_error(ret_error, EINVAL, "must be none, host, bridge or a network name");
        req->network = strdup(s);
        return req->network ? 0 : -ENOMEM;
}

/* An array of at most max objects, each with no member the table does not name, dispatched into a
 * calloc'd array of elements of size bytes: *ret_n counts those dispatched, so the request's free sees
 * every one, also after a failure. The caller checks the values. */
static int dispatch_object_array(JsonNode *node, const JsonField table[], size_t size, unsigned max,
                                 const char *what, void **ret, size_t *ret_n, char **ret_error) {
        JsonArray *a;
        guint n;
        int r;

        if (!JSON_NODE_HOLDS_ARRAY(node))
                return json_set_error(ret_error, EBADMSG, "must be an array");
        a = json_node_get_array(node);
        n = json_array_get_length(a);
        if (n > max)
                return json_set_error(ret_error, E2BIG, "more than %u %s", max, what);
        *ret = calloc(n ? n : 1, size);
        if (!*ret)
                return -ENOMEM;
        for (guint i = 0; i < n; i++) {
                JsonNode *e = json_array_get_element(a, i);

                *ret_n = i + 1;
                if (!JSON_NODE_HOLDS_OBJECT(e))
                        return json_set_error(ret_error, EBADMSG, "entry %u must be an object", i);
                r = check_known(json_node_get_object(e), table, ret_error);
                if (r >= 0)
                        r = json_dispatch(json_node_get_object(e), table, (char *) *ret + i * size, NULL,
                                          ret_error);
                if (r < 0)
                        return json_prefix_error(ret_error, "entry %u", i), r;
        }
        return 0;
}

static int dispatch_ports(JsonNode *node, void *target, void *userdata, char **ret_error) {
        ContainerRequest *req = userdata;
        static const JsonField port_table[] = {
                { "host_ip", JSON_FIELD_STRING, offsetof(RequestPort, host_ip), 0 },
                { "host_port", JSON_FIELD_UINT64, offsetof(RequestPort, host_port), JSON_MANDATORY },
                { "container_port", JSON_FIELD_UINT64, offsetof(RequestPort, container_port),
                  JSON_MANDATORY },
                { "protocol", JSON_FIELD_STRING, offsetof(RequestPort, protocol), 0 },
                {},
        };
        int r;

        r = dispatch_object_array(node, port_table, sizeof(RequestPort), REQUEST_PORTS_MAX, "ports",
                                  (void **) &req->ports, &req->n_ports, ret_error);
        if (r < 0)
                return r;
        for (guint i = 0; i < req->n_ports; i++) {
                RequestPort *p = &req->ports[i];

                if (!p->protocol)
                        p->protocol = strdup("tcp");
                if (!p->host_ip)
                        p->host_ip = strdup("");
                if (!p->protocol || !p->host_ip)
                        return -ENOMEM;
                if (!streq(p->protocol, "tcp") && !streq(p->protocol, "udp"))
                        return json_set_error(ret_error, EINVAL, "entry %u: protocol must be tcp or udp", i);
                if (p->host_port < 1 || p->host_port > 65535 || p->container_port < 1 ||
                    p->container_port > 65535)
                        return json_set_error(ret_error, ERANGE, "entry %u: ports must be 1..65535", i);
                if (!isempty(p->host_ip) && !ip_address_is_valid(p->host_ip))
                        return json_set_error(ret_error, EINVAL, "entry %u: invalid host address", i);
                for (guint k = 0; k < i; k++)
                        if (req->ports[k].host_port == p->host_port &&
                            streq(req->ports[k].protocol, p->protocol))
                                return json_set_error(ret_error, EINVAL,
                                                      "entry %u: host port %" G_GUINT64_FORMAT
                                                      "/%s is published twice",
                                                      i, p->host_port, p->protocol);
        }
        return 0;
}

/* Refuse members the table does not name: the broker and we must agree on every field, and a field we
 * do not know could be an option the broker believes took effect. */
static int check_known(JsonObject *o, const JsonField table[], char **ret_error) {
        g_autoptr(GList) members = json_object_get_members(o);

        for (GList *l = members; l; l = l->next) {
                bool known = false;
                for (const JsonField *f = table; f->name && !known; f++)
                        known = streq(f->name, l->data);
                if (!known)
                        return json_set_error(ret_error, EBADMSG, "unknown field '%.64s'", (char *) l->data);
        }
        return 0;
}

static int dispatch_mounts(JsonNode *node, void *target, void *userdata, char **ret_error) {
        ContainerRequest *req = userdata;
        static const JsonField mount_table[] = {
                { "source_fd", JSON_FIELD_UINT64, offsetof(RequestMount, source_fd), JSON_MANDATORY },
                { "destination", JSON_FIELD_STRING, offsetof(RequestMount, destination), JSON_MANDATORY },
                { "readonly", JSON_FIELD_BOOL, offsetof(RequestMount, readonly), 0 },
                {},
        };
        int r;

        r = dispatch_object_array(node, mount_table, sizeof(RequestMount), REQUEST_MOUNTS_MAX, "mounts",
                                  (void **) &req->mounts, &req->n_mounts, ret_error);
        if (r < 0)
                return r;
        for (guint i = 0; i < req->n_mounts; i++) {
                RequestMount *m = &req->mounts[i];

                if (m->source_fd != i)
                        /* One fd per mount, in order: "mount<i>". A second mount of the same fd would be
                         * a second, unchecked use of what the caller opened once. */
                        return json_set_error(ret_error, EINVAL, "entry %u: source_fd must be %u", i, i);
                if (!container_path_is_valid(m->destination) || streq(m->destination, "/"))
                        return json_set_error(ret_error, EINVAL, "entry %u: invalid destination", i);
                /* SECURITY: never over the kernel's interfaces or the container's /dev: those are the
                 * engine's own mounts (masked paths, devices; S5, S6). */
                static const char *const forbidden[] = { "/proc", "/sys", "/dev" };
                for (size_t k = 0; k < ELEMENTSOF(forbidden); k++) {
                        size_t l = strlen(forbidden[k]);
                        if (strncmp(m->destination, forbidden[k], l) == 0 &&
                            (m->destination[l] == 0 || m->destination[l] == '/'))
                                return json_set_error(ret_error, EINVAL, "entry %u: destination under %s", i,
                                                      forbidden[k]);
                }
                for (guint k = 0; k < i; k++)
                        if (streq(req->mounts[k].destination, m->destination))
                                return json_set_error(ret_error, EINVAL, "entry %u: duplicate destination",
                                                      i);
        }
        return 0;
}

static const JsonField request_table[] = {
        { "name", JSON_FIELD_STRING, offsetof(ContainerRequest, name), JSON_MANDATORY },
        { "owner", JSON_FIELD_UINT64, offsetof(ContainerRequest, owner), JSON_MANDATORY },
        { "image_config", JSON_FIELD_STRING, offsetof(ContainerRequest, image_config), JSON_MANDATORY },
        { "entrypoint", JSON_FIELD_STRV, offsetof(ContainerRequest, entrypoint), JSON_NULLABLE },
        { "cmd", JSON_FIELD_STRV, offsetof(ContainerRequest, cmd), JSON_NULLABLE },
        { "env", JSON_FIELD_STRV, offsetof(ContainerRequest, env), 0 },
        { "workdir", JSON_FIELD_STRING, offsetof(ContainerRequest, workdir), 0 },
        { "user", JSON_FIELD_STRING, offsetof(ContainerRequest, user), 0 },
        { "hostname", JSON_FIELD_STRING, offsetof(ContainerRequest, hostname), 0 },
        { "tty", JSON_FIELD_BOOL, offsetof(ContainerRequest, tty), 0 },
        { "stdin", JSON_FIELD_BOOL, offsetof(ContainerRequest, stdin_open), 0 },
        { "detach", JSON_FIELD_BOOL, offsetof(ContainerRequest, detach), 0 },
        { "read_only", JSON_FIELD_BOOL, offsetof(ContainerRequest, read_only), 0 },
        { "memory", JSON_FIELD_UINT64, offsetof(ContainerRequest, memory), 0 },
        { "cpu_quota_milli", JSON_FIELD_UINT64, offsetof(ContainerRequest, cpu_quota_milli), 0 },
        { "pids_limit", JSON_FIELD_UINT64, offsetof(ContainerRequest, pids_limit), 0 },
        { "cap_add", JSON_FIELD_CUSTOM, offsetof(ContainerRequest, cap_add), 0, dispatch_caps },
        { "cap_drop", JSON_FIELD_CUSTOM, offsetof(ContainerRequest, cap_drop), 0, dispatch_caps },
        { "privileged", JSON_FIELD_BOOL, offsetof(ContainerRequest, privileged), 0 },
        { "seccomp", JSON_FIELD_CUSTOM, offsetof(ContainerRequest, seccomp_unconfined), 0,
          dispatch_seccomp },
        { "net", JSON_FIELD_CUSTOM, offsetof(ContainerRequest, net_host), 0, dispatch_net },
        { "mounts", JSON_FIELD_CUSTOM, 0, 0, dispatch_mounts },
        { "health", JSON_FIELD_CUSTOM, offsetof(ContainerRequest, health), JSON_NULLABLE,
          health_config_dispatch },
        { "restart", JSON_FIELD_STRING, offsetof(ContainerRequest, restart), 0 },
        { "log_max_size", JSON_FIELD_UINT64, offsetof(ContainerRequest, log_max_size), 0 },
        { "ports", JSON_FIELD_CUSTOM, 0, 0, dispatch_ports },
        { "dns", JSON_FIELD_STRV, offsetof(ContainerRequest, dns), 0 },
        { "add_hosts", JSON_FIELD_STRV, offsetof(ContainerRequest, add_hosts), 0 },
        {},
};

/* restart and log_max_size (restart-parse.h). A restart runs the stored config.json again, whose bind
 * sources are descriptors of the first run: the two do not go together yet. */
static int validate_life_options(ContainerRequest *r, char **ret_error) {
        RestartPolicy p;

        if (restart_policy_parse(r->restart, &p) < 0)
                return json_set_error(ret_error, EINVAL,
                                      "field 'restart': want no, on-failure[:N], always or unless-stopped");
        if (p.mode != RESTART_NO && r->n_mounts > 0)
                return json_set_error(
                        ret_error, EINVAL,
                        "field 'restart': restart policies and bind mounts cannot be combined");
        if (r->log_max_size != 0 &&
            (r->log_max_size < REQUEST_LOG_SIZE_MIN || r->log_max_size > REQUEST_LOG_SIZE_MAX))
                return json_set_error(ret_error, ERANGE,
                                      "field 'log_max_size': must be 0 or between %llu and %llu bytes",
                                      REQUEST_LOG_SIZE_MIN, REQUEST_LOG_SIZE_MAX);
        return 0;
}

bool container_name_is_valid(const char *n) {
        size_t len = strlen(n);

        /* docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]* */
        if (len == 0 || len > REQUEST_NAME_MAX || !isascii(n[0]) || !isalnum(n[0]))
                return false;
        for (const char *p = n; *p; p++)
                if (!isascii(*p) || !(isalnum(*p) || *p == '_' || *p == '.' || *p == '-'))
                        return false;
        return true;
}

static int check_args(const ContainerRequest *r, size_t *bytes, char **ret_error) {
        size_t n = 0;

        STRV_FOREACH(s, r->entrypoint) {
                n++;
                *bytes += strlen(*s) + 1;
        }
        STRV_FOREACH(s, r->cmd) {
                n++;
                *bytes += strlen(*s) + 1;
        }
        if (n > REQUEST_ARGS_MAX)
                return json_set_error(ret_error, E2BIG, "more than %u arguments", REQUEST_ARGS_MAX);
        return 0;
}

static int validate_network(ContainerRequest *r, char **ret_error) {
        size_t n = 0;

        /* No "net" at all: the default network, as podman and nerdctl do. */
        if (!r->net_host && !r->net_none && !r->network) {
                r->network = strdup(REQUEST_DEFAULT_NETWORK);
                if (!r->network)
                        return -ENOMEM;
        }
        if (!r->network && (r->n_ports > 0 || r->dns || r->add_hosts))
                return json_set_error(ret_error, EINVAL,
                                      "ports, dns and add_hosts need a network (not --net none or host)");
        STRV_FOREACH(d, r->dns) {
                if (++n > REQUEST_DNS_MAX)
                        return json_set_error(ret_error, E2BIG, "field 'dns': more than %u servers",
                                              REQUEST_DNS_MAX);
                if (!ip_address_is_valid(*d))
                        return json_set_error(ret_error, EINVAL, "field 'dns': '%.64s' is not an address",
                                              *d);
        }
        n = 0;
        STRV_FOREACH(h, r->add_hosts) {
                const char *colon = strchr(*h, ':');
                g_autofree char *name = colon ? g_strndup(*h, (gsize) (colon - *h)) : NULL;

                if (++n > REQUEST_ADD_HOSTS_MAX)
                        return json_set_error(ret_error, E2BIG, "field 'add_hosts': more than %u entries",
                                              REQUEST_ADD_HOSTS_MAX);
                /* SECURITY: both halves are checked here: they become lines of the container's
                 * /etc/hosts, so no whitespace or control byte may slip in. */
                if (!name || !hostname_is_valid(name) || !ip_address_is_valid(colon + 1))
                        return json_set_error(ret_error, EINVAL,
                                              "field 'add_hosts': '%.128s' is not NAME:ADDRESS", *h);
        }
        return 0;
}

static int validate(ContainerRequest *r, char **ret_error) {
        DigestAlgorithm alg;
        size_t bytes = 0, n_env = 0;
        int k;

        if (!container_name_is_valid(r->name))
                return json_set_error(ret_error, EINVAL, "field 'name': invalid container name");
        if (r->owner >= UINT32_MAX)
                return json_set_error(ret_error, ERANGE, "field 'owner': not a valid uid");
        if (digest_validate(r->image_config, &alg) < 0 || alg != DIGEST_SHA256)
                return json_set_error(ret_error, EINVAL, "field 'image_config': not a sha256 digest");
        k = check_args(r, &bytes, ret_error);
        if (k < 0)
                return k;
        STRV_FOREACH(e, r->env) {
                if (!env_entry_is_valid(*e))
                        return json_set_error(
                                ret_error, EINVAL,
                                "field 'env': entry %zu is not NAME=VALUE without control characters",
                                n_env);
                n_env++;
                bytes += strlen(*e) + 1;
        }
        if (n_env > REQUEST_ENV_MAX)
                return json_set_error(ret_error, E2BIG, "field 'env': more than %u entries",
                                      REQUEST_ENV_MAX);
        if (bytes > REQUEST_STRINGS_BYTES_MAX)
                return json_set_error(ret_error, E2BIG, "arguments and environment exceed %u bytes",
                                      REQUEST_STRINGS_BYTES_MAX);
        if (!isempty(r->workdir) && !container_path_is_valid(r->workdir))
                return json_set_error(ret_error, EINVAL, "field 'workdir': not an absolute path");
        if (r->user && (strlen(r->user) > REQUEST_USER_MAX || has_control(r->user)))
                return json_set_error(ret_error, EINVAL, "field 'user': invalid");
        if (!isempty(r->hostname) && !hostname_is_valid(r->hostname))
                return json_set_error(ret_error, EINVAL, "field 'hostname': invalid host name");
        if (r->memory != 0 && (r->memory < REQUEST_MEMORY_MIN || r->memory > REQUEST_MEMORY_MAX))
                return json_set_error(ret_error, ERANGE,
                                      "field 'memory': must be 0 or between %llu and %llu bytes",
                                      REQUEST_MEMORY_MIN, REQUEST_MEMORY_MAX);
        if (r->cpu_quota_milli > REQUEST_CPU_MILLI_MAX ||
            (r->cpu_quota_milli > 0 && r->cpu_quota_milli < 10))
                return json_set_error(ret_error, ERANGE, "field 'cpu_quota_milli': must be 0 or 10..%u",
                                      REQUEST_CPU_MILLI_MAX);
        if (r->pids_limit > REQUEST_PIDS_MAX)
                return json_set_error(ret_error, ERANGE, "field 'pids_limit': must be at most %u",
                                      REQUEST_PIDS_MAX);
        if (r->tty && r->detach && r->stdin_open)
                return json_set_error(ret_error, EINVAL, "a detached container cannot keep stdin open");
        k = validate_life_options(r, ret_error);
        if (k < 0)
                return k;
        return validate_network(r, ret_error);
}

int container_request_parse(const char *data, size_t size, ContainerRequest **ret, char **ret_error) {
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_(container_request_freep) ContainerRequest *r = NULL;
        int k;

        k = json_parse_bounded(data, size, REQUEST_SIZE_MAX, &root, ret_error);
        if (k < 0)
                return k;
        if (!JSON_NODE_HOLDS_OBJECT(root))
                return json_set_error(ret_error, EBADMSG, "the request must be a JSON object");
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        k = check_known(json_node_get_object(root), request_table, ret_error);
        if (k < 0)
                return k;
        k = json_dispatch(json_node_get_object(root), request_table, r, r, ret_error);
        if (k < 0)
                return k;
        k = validate(r, ret_error);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(r);
        return 0;
}

bool container_request_is_privileged(const ContainerRequest *r, char **ret_what) {
        g_autoptr(GString) what = g_string_new(NULL);

        if (r->privileged)
                g_string_append(what, "privileged, ");
        if (r->cap_add && r->cap_add[0])
                g_string_append(what, "cap_add, ");
        if (r->seccomp_unconfined)
                g_string_append(what, "seccomp=unconfined, ");
        if (r->net_host)
                g_string_append(what, "net=host, ");
        if (r->n_mounts > 0)
                g_string_append(what, "bind mounts, ");
        /* SECURITY: a port below 1024 is one only root may bind on the host, and an address other than
         * loopback opens the container to the network: both are the host's to give. */
        for (size_t i = 0; i < r->n_ports; i++) {
                const char *ip = request_port_host_ip(&r->ports[i]);
                if (r->ports[i].host_port < 1024) {
                        g_string_append(what, "host port below 1024, ");
                        break;
                }
                if (!g_str_has_prefix(ip, "127.") && !streq(ip, "::1")) {
                        g_string_append(what, "port on a non-loopback address, ");
                        break;
                }
        }
        /* cap_drop only takes away: not privileged. */
        if (what->len == 0) {
                if (ret_what)
                        *ret_what = NULL;
                return false;
        }
        g_string_truncate(what, what->len - 2);
        if (ret_what)
                *ret_what = strdup(what->str);
        return true;
}
