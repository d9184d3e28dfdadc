/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* CNI runtime: conflist checks, plugin execution (CNI_* environment, the plugin's config on stdin, its
 * result on stdout, size-capped and time-limited), prevResult chaining, DEL in reverse order. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cni.h"
#include "escape.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"

const char *cni_plugin_path(void) {
        /* Debian installs the plugins in /usr/lib/cni; /opt/cni/bin is where upstream's tarball goes. A
         * test may point elsewhere with BERTH_CNI_PATH. */
        return getenv("BERTH_CNI_PATH") ?: "/usr/lib/cni:/opt/cni/bin";
}

static bool plugin_type_is_valid(const char *t) {
        size_t n = t ? strlen(t) : 0;

        /* SECURITY: "type" names a program we execute as root; only a plain name, looked up in the plugin
         * directories, never a path. */
        if (n == 0 || n > 64 || t[0] == '.' || t[0] == '-')
                return false;
        for (const char *c = t; *c; c++)
                if (!(g_ascii_isalnum(*c) || *c == '-' || *c == '_' || *c == '.'))
                        return false;
        return true;
}

static char *plugin_find(const char *type) {
        g_auto(GStrv) dirs = g_strsplit(cni_plugin_path(), ":", -1);

        for (char **d = dirs; *d; d++) {
                g_autofree char *p = NULL;
                struct stat st;

                if (**d != '/')
                        continue;
                p = g_build_filename(*d, type, NULL);
                if (stat(p, &st) >= 0 && S_ISREG(st.st_mode) && access(p, X_OK) >= 0)
                        return g_steal_pointer(&p);
        }
        return NULL;
}

CniNetwork *cni_network_free(CniNetwork *n) {
        if (!n)
                return NULL;
        g_free(n->name);
        g_free(n->cni_version);
        if (n->root)
                json_node_unref(n->root);
        g_free(n->bridge);
        g_free(n->subnet);
        g_free(n->gateway);
        g_free(n);
        return NULL;
}

/* The bridge plugin's first range: what `network ls/inspect` show and the collision check uses. */
static void read_bridge(CniNetwork *n, JsonObject *plugin) {
        JsonObject *ipam = json_object_get_object_or_null(plugin, "ipam");
        JsonArray *ranges = ipam ? json_object_get_array_or_null(ipam, "ranges") : NULL;
        JsonNode *set =
                ranges && json_array_get_length(ranges) > 0 ? json_array_get_element(ranges, 0) : NULL;
        JsonNode *first =
                set && JSON_NODE_HOLDS_ARRAY(set) && json_array_get_length(json_node_get_array(set)) > 0
                        ? json_array_get_element(json_node_get_array(set), 0)
                        : NULL;
        JsonObject *range = first && JSON_NODE_HOLDS_OBJECT(first) ? json_node_get_object(first) : NULL;

        n->bridge = g_strdup(json_object_get_string_or_null(plugin, "bridge") ?: "cni0");
        n->subnet = g_strdup(json_object_get_string_or_null(range, "subnet"));
        n->gateway = g_strdup(json_object_get_string_or_null(range, "gateway"));
}

int cni_network_parse(const char *data, size_t size, CniNetwork **ret, char **ret_error) {
        _cleanup_(cni_network_freep) CniNetwork *n = g_new0(CniNetwork, 1);
        JsonObject *o;
        const char *name, *version;
        guint count;
        int r;

        r = json_parse_bounded(data, size, CNI_CONFLIST_MAX, &n->root, ret_error);
        if (r < 0)
                return r;
        if (!JSON_NODE_HOLDS_OBJECT(n->root))
                return json_set_error(ret_error, EBADMSG, "not a JSON object");
        o = json_node_get_object(n->root);
        name = json_object_get_string_or_null(o, "name");
        version = json_object_get_string_or_null(o, "cniVersion");
        if (!name || !network_name_is_valid(name))
                return json_set_error(ret_error, EBADMSG, "missing or invalid \"name\"");
        if (!version || strlen(version) > 16)
                return json_set_error(ret_error, EBADMSG, "missing or invalid \"cniVersion\"");
        n->plugins = json_object_get_array_or_null(o, "plugins");
        count = n->plugins ? json_array_get_length(n->plugins) : 0;
        if (count == 0 || count > CNI_PLUGINS_MAX)
                return json_set_error(ret_error, EBADMSG, "\"plugins\" must list 1 to %u plugins",
                                      CNI_PLUGINS_MAX);
        for (guint i = 0; i < count; i++) {
                JsonNode *e = json_array_get_element(n->plugins, i);
                JsonObject *p = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
                const char *type = json_object_get_string_or_null(p, "type");
                g_autofree char *path = NULL;

                if (!plugin_type_is_valid(type))
                        return json_set_error(ret_error, EBADMSG, "plugin %u: missing or invalid \"type\"",
                                              i);
                path = plugin_find(type);
                if (!path)
                        return json_set_error(ret_error, ENOENT,
                                              "plugin '%s' is not installed in %s (Debian: apt-get install "
                                              "containernetworking-plugins)",
                                              type, cni_plugin_path());
                if (streq(type, "bridge") && !n->bridge)
                        read_bridge(n, p);
        }
        n->name = g_strdup(name);
        n->cni_version = g_strdup(version);
        *ret = TAKE_PTR(n);
        return 0;
}

/* ---- running one plugin -------------------------------------------------------------------------- */

static int64_t now_msec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs one plugin; *ret_out is what it printed (NUL-terminated, ≤ CNI_RESULT_MAX). Returns its exit
 * status (≥ 0), or -errno when it could not be run or did not end in time. */
static int plugin_exec(const char *path, const char *command, const CniRuntime *rt, const char *config,
                       char **ret_out) {
        g_autoptr(GString) out = g_string_new(NULL);
        g_autofree char *env_cmd = g_strdup_printf("CNI_COMMAND=%s", command);
        g_autofree char *env_id = g_strdup_printf("CNI_CONTAINERID=%s", rt->container_id);
        g_autofree char *env_ns = g_strdup_printf("CNI_NETNS=%s", rt->netns ?: "");
        g_autofree char *env_if = g_strdup_printf("CNI_IFNAME=%s", rt->ifname);
        g_autofree char *env_path = g_strdup_printf("CNI_PATH=%s", cni_plugin_path());
        char *const envp[] = {
                env_cmd,  env_id,
                env_ns,   env_if,
                env_path, (char *) "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                NULL
        };
        char *const argv[] = { (char *) path, NULL };
        int in[2] = { -1, -1 }, outp[2] = { -1, -1 }, status, r = 0;
        size_t config_len = strlen(config), written = 0;
        int64_t deadline = now_msec() + CNI_PLUGIN_TIMEOUT_SEC * 1000;
        pid_t pid;

        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0) {
                r = -errno;
                safe_close(in[0]);
                safe_close(in[1]);
                return r;
        }
        pid = fork();
        if (pid < 0) {
                r = -errno;
                safe_close(in[0]);
                safe_close(in[1]);
                safe_close(outp[0]);
                safe_close(outp[1]);
                return r;
        }
        if (pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (dup2(in[0], 0) < 0 || dup2(outp[1], 1) < 0)
                        _exit(127);
                /* stderr stays ours: plugins log there, and so it reaches our journal. */
                execve(path, argv, envp);
                _exit(127);
        }
        safe_close(in[0]);
        safe_close(outp[1]);
        (void) fcntl(in[1], F_SETFL, O_NONBLOCK);
        (void) fcntl(outp[0], F_SETFL, O_NONBLOCK);
        for (;;) {
                struct pollfd p[2] = { { .fd = outp[0], .events = POLLIN },
                                       { .fd = in[1], .events = POLLOUT } };
                int64_t left = deadline - now_msec();
                int k;

                if (left <= 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                k = poll(p, in[1] >= 0 ? 2 : 1, (int) left);
                if (k < 0 && errno != EINTR) {
                        r = -errno;
                        break;
                }
                if (k <= 0)
                        continue;
                if (in[1] >= 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
                        ssize_t w = write(in[1], config + written, config_len - written);
                        if (w > 0)
                                written += (size_t) w;
                        if (w < 0 && errno != EAGAIN && errno != EINTR)
                                written = config_len; /* it stopped reading: its result will say why */
                        if (written >= config_len)
                                in[1] = safe_close(in[1]);
                }
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        char buf[16384];
                        ssize_t n = read(outp[0], buf, sizeof(buf));
                        if (n == 0)
                                break;
                        if (n < 0) {
                                if (errno == EAGAIN || errno == EINTR)
                                        continue;
                                r = -errno;
                                break;
                        }
                        if (out->len + (size_t) n > CNI_RESULT_MAX) {
                                r = -EFBIG;
                                break;
                        }
                        g_string_append_len(out, buf, n);
                }
        }
        safe_close(in[1]);
        safe_close(outp[0]);
        if (r < 0)
                (void) kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (r < 0)
                return r;
        *ret_out = g_string_free(g_steal_pointer(&out), false);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* The config one plugin gets: its own entry plus name, cniVersion, prevResult and the runtimeConfig of
 * the capabilities it declares (CNI spec, "Deriving execution configuration from plugin configuration"). */
static char *plugin_config(const CniNetwork *n, JsonObject *plugin, const CniRuntime *rt, JsonNode *prev) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonNode) root = NULL;
        g_autoptr(GList) members = json_object_get_members(plugin);
        JsonObject *caps = json_object_get_object_or_null(plugin, "capabilities");
        JsonNode *pm = caps ? json_object_get_member(caps, "portMappings") : NULL;
        bool want_ports = pm && JSON_NODE_HOLDS_VALUE(pm) &&
                          json_node_get_value_type(pm) == G_TYPE_BOOLEAN && json_node_get_boolean(pm);

        json_builder_begin_object(b);
        for (GList *l = members; l; l = l->next) {
                const char *k = l->data;
                if (streq(k, "name") || streq(k, "cniVersion") || streq(k, "prevResult") ||
                    streq(k, "runtimeConfig"))
                        continue;
                json_builder_set_member_name(b, k);
                json_builder_add_value(b, json_node_copy(json_object_get_member(plugin, k)));
        }
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, n->name);
        json_builder_set_member_name(b, "cniVersion");
        json_builder_add_string_value(b, n->cni_version);
        if (prev) {
                json_builder_set_member_name(b, "prevResult");
                json_builder_add_value(b, json_node_copy(prev));
        }
        if (want_ports && rt->n_ports > 0) {
                json_builder_set_member_name(b, "runtimeConfig");
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "portMappings");
                json_builder_begin_array(b);
                for (size_t i = 0; i < rt->n_ports; i++) {
                        json_builder_begin_object(b);
                        json_builder_set_member_name(b, "hostPort");
                        json_builder_add_int_value(b, (gint64) rt->ports[i].host_port);
                        json_builder_set_member_name(b, "containerPort");
                        json_builder_add_int_value(b, (gint64) rt->ports[i].container_port);
                        json_builder_set_member_name(b, "protocol");
                        json_builder_add_string_value(b, rt->ports[i].protocol);
                        json_builder_set_member_name(b, "hostIP");
                        json_builder_add_string_value(b, request_port_host_ip(&rt->ports[i]));
                        json_builder_end_object(b);
                }
                json_builder_end_array(b);
                json_builder_end_object(b);
        }
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        return json_to_string_compact(root);
}

/* A failed plugin's stdout is a CNI error object {code, msg, details}; keep it short and printable. */
static int plugin_error(const char *type, const char *command, int status, const char *out,
                        char **ret_error) {
        _cleanup_json_node_ JsonNode *root = NULL;
        _cleanup_free_ char *ignored = NULL;
        const char *msg = NULL, *details = NULL;
        g_autofree char *text = NULL;

        if (out && json_parse_bounded(out, strlen(out), CNI_RESULT_MAX, &root, &ignored) >= 0 &&
            JSON_NODE_HOLDS_OBJECT(root)) {
                msg = json_object_get_string_or_null(json_node_get_object(root), "msg");
                details = json_object_get_string_or_null(json_node_get_object(root), "details");
        }
        text = g_strdup_printf("%s%s%s", msg ?: "", details && *details ? ": " : "", details ?: "");
        for (char *c = text; *c; c++)
                if ((unsigned char) *c < 0x20)
                        *c = ' ';
        return json_set_error(ret_error, EIO, "CNI plugin '%s' failed %s (status %d)%s%.400s", type, command,
                              status, *text ? ": " : "", text);
}

static JsonObject *plugin_at(const CniNetwork *n, guint i) {
        return json_node_get_object(json_array_get_element(n->plugins, i));
}

static bool plugin_is_ports_only(JsonObject *plugin) {
        JsonObject *caps = json_object_get_object_or_null(plugin, "capabilities");
        JsonNode *pm = caps ? json_object_get_member(caps, "portMappings") : NULL;

        return pm && JSON_NODE_HOLDS_VALUE(pm) && json_node_get_value_type(pm) == G_TYPE_BOOLEAN &&
               json_node_get_boolean(pm) &&
               streq_ptr(json_object_get_string_or_null(plugin, "type"), "portmap");
}

static bool plugin_skipped(const CniNetwork *n, guint i, const CniRuntime *rt) {
        return !rt->all_plugins && rt->n_ports == 0 && plugin_is_ports_only(plugin_at(n, i));
}

static int run_plugin(const CniNetwork *n, guint i, const char *command, const CniRuntime *rt,
                      JsonNode *prev, JsonNode **ret_result, char **ret_error) {
        JsonObject *plugin = plugin_at(n, i);
        const char *type = json_object_get_string_or_null(plugin, "type");
        g_autofree char *path = plugin_find(type);
        _cleanup_free_ char *config = NULL, *out = NULL;
        int status;

        if (!path)
                return json_set_error(ret_error, ENOENT, "CNI plugin '%s' is not installed in %s", type,
                                      cni_plugin_path());
        config = plugin_config(n, plugin, rt, prev);
        if (!config)
                return -ENOMEM;
        status = plugin_exec(path, command, rt, config, &out);
        if (status < 0)
                return json_set_error(ret_error, -status, "CNI plugin '%s' (%s): %s", type, command,
                                      strerror(-status));
        if (status != 0)
                return plugin_error(type, command, status, out, ret_error);
        if (ret_result) {
                int r = json_parse_bounded(out, strlen(out), CNI_RESULT_MAX, ret_result, ret_error);
                if (r < 0)
                        return json_prefix_error(ret_error, "CNI plugin '%s' printed no valid result", type),
                               r;
                if (!JSON_NODE_HOLDS_OBJECT(*ret_result))
                        return json_set_error(ret_error, EBADMSG, "CNI plugin '%s' printed no result object",
                                              type);
        }
        return 0;
}

int cni_add(const CniNetwork *n, const CniRuntime *rt, JsonNode **ret_result, char **ret_error) {
        g_autoptr(JsonNode) prev = NULL;
        guint count = json_array_get_length(n->plugins);
        int r;

        for (guint i = 0; i < count; i++) {
                JsonNode *result = NULL;

                if (plugin_skipped(n, i, rt))
                        continue;
                r = run_plugin(n, i, "ADD", rt, prev, &result, ret_error);
                if (r < 0) {
                        /* Undo what the earlier plugins (and this one, partly) did: DEL is idempotent. */
                        for (guint k = i + 1; k-- > 0;)
                                if (!plugin_skipped(n, k, rt))
                                        (void) run_plugin(n, k, "DEL", rt, prev, NULL, NULL);
                        return r;
                }
                if (prev)
                        json_node_unref(prev);
                prev = result;
        }
        *ret_result = g_steal_pointer(&prev);
        return 0;
}

int cni_del(const CniNetwork *n, const CniRuntime *rt, JsonNode *prev_result, char **ret_error) {
        int r = 0;

        for (guint i = json_array_get_length(n->plugins); i-- > 0;) {
                _cleanup_free_ char *msg = NULL;
                int k;

                if (plugin_skipped(n, i, rt))
                        continue;
                k = run_plugin(n, i, "DEL", rt, prev_result, NULL, &msg);

                if (k < 0) {
                        log_warning("Network '%s', container %s: %s", n->name, rt->container_id, strna(msg));
                        if (r == 0) {
                                r = k;
                                if (ret_error)
                                        *ret_error = TAKE_PTR(msg);
                        }
                }
        }
        return r;
}

/* "10.88.0.2/16", "fd00::2/64": what a result's address must look like before anyone uses it. */
static bool address_with_prefix_is_valid(const char *s) {
        const char *slash = strchr(s, '/');
        g_autofree char *ip = slash ? g_strndup(s, (gsize) (slash - s)) : NULL;
        unsigned max = ip && strchr(ip, ':') ? 128 : 32;
        char *end;
        unsigned long p;

        if (!ip || !ip_address_is_valid(ip) || !g_ascii_isdigit(slash[1]))
                return false;
        errno = 0;
        p = strtoul(slash + 1, &end, 10);
        return errno == 0 && *end == 0 && p <= max;
}

char **cni_result_addresses(JsonNode *result) {
        g_autoptr(GPtrArray) l = g_ptr_array_new();
        JsonArray *ips = result && JSON_NODE_HOLDS_OBJECT(result)
                                 ? json_object_get_array_or_null(json_node_get_object(result), "ips")
                                 : NULL;

        for (guint i = 0; ips && i < json_array_get_length(ips); i++) {
                JsonNode *e = json_array_get_element(ips, i);
                const char *a = JSON_NODE_HOLDS_OBJECT(e)
                                        ? json_object_get_string_or_null(json_node_get_object(e), "address")
                                        : NULL;
                /* SECURITY: a plugin's output; the addresses go into other containers' /etc/hosts
                 * and to clients. */
                if (a && strlen(a) < 64 && address_with_prefix_is_valid(a))
                        g_ptr_array_add(l, g_strdup(a));
                else if (a) {
                        _cleanup_free_ char *shown = escape_untrusted(a, 64, ESCAPE_QUOTED);
                        log_warning("Ignoring invalid address in a CNI result: '%s'", strna(shown));
                }
        }
        g_ptr_array_add(l, NULL);
        return (char **) g_ptr_array_free(g_steal_pointer(&l), false);
}
