/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cni.h"
#include "container.h"
#include "etc-files.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"
#include "net-attach.h"
#include "netns.h"
#include "network-store.h"

#define CNI_LEASE_DIR "/var/lib/cni/networks"

static JsonNode *attachment_read(int dir_fd) {
        _cleanup_close_ int fd = openat(dir_fd, NET_ATTACHMENT_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_free_ char *data = NULL, *msg = NULL;
        JsonNode *root = NULL;
        size_t size;

        if (fd < 0 || read_regular_file_fd(fd, NET_ATTACHMENT_MAX, &data, &size) < 0 ||
            json_parse_bounded(data, size, NET_ATTACHMENT_MAX, &root, &msg) < 0)
                return NULL;
        if (!JSON_NODE_HOLDS_OBJECT(root)) {
                json_node_unref(root);
                return NULL;
        }
        return root;
}

static int attachment_write(int dir_fd, JsonNode *root) {
        _cleanup_free_ char *s = json_to_string_compact(root);

        if (!s)
                return -ENOMEM;
        return write_file_atomic_at(dir_fd, NET_ATTACHMENT_FILE, s, strlen(s), 0600);
}

/* The ports of a record, as RequestPorts borrowing its strings. */
static RequestPort *attachment_ports(JsonObject *o, size_t *ret_n) {
        JsonArray *a = json_object_get_array_or_null(o, "ports");
        guint n = a ? MIN(json_array_get_length(a), REQUEST_PORTS_MAX) : 0;
        RequestPort *p = g_new0(RequestPort, n + 1);
        size_t k = 0;

        for (guint i = 0; i < n; i++) {
                JsonNode *e = json_array_get_element(a, i);
                JsonObject *po = JSON_NODE_HOLDS_OBJECT(e) ? json_node_get_object(e) : NULL;
                const char *ip = json_object_get_string_or_null(po, "host_ip"),
                           *proto = json_object_get_string_or_null(po, "protocol");

                if (!ip || !proto)
                        continue;
                p[k].host_ip = (char *) ip;
                p[k].protocol = (char *) proto;
                p[k].host_port = (uint64_t) json_object_get_int_member_with_default(po, "host_port", 0);
                p[k].container_port =
                        (uint64_t) json_object_get_int_member_with_default(po, "container_port", 0);
                k++;
        }
        *ret_n = k;
        return p;
}

static bool ip_is_any(const char *ip) {
        return streq(ip, "0.0.0.0") || streq(ip, "::");
}

/* ---- published ports ------------------------------------------------------------------------------ */

/* Taken by another container (its record) or by a socket on the host. */
static int ports_check(const NetAttachArgs *a, char **ret_error) {
        const ContainerRequest *req = a->request;
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;

        if (req->n_ports == 0)
                return 0;
        d = opendir(a->containers_path);
        while (d && (de = readdir(d))) {
                _cleanup_close_ int dir_fd = -EBADF;
                g_autoptr(JsonNode) rec = NULL;
                g_autofree RequestPort *ports = NULL;
                size_t n = 0;

                if (!container_id_is_valid(de->d_name) || streq(de->d_name, a->id))
                        continue;
                dir_fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                rec = dir_fd >= 0 ? attachment_read(dir_fd) : NULL;
                if (!rec)
                        continue;
                ports = attachment_ports(json_node_get_object(rec), &n);
                for (size_t i = 0; i < n; i++)
                        for (size_t k = 0; k < req->n_ports; k++) {
                                const char *mine = request_port_host_ip(&req->ports[k]);
                                if (ports[i].host_port == req->ports[k].host_port &&
                                    streq(ports[i].protocol, req->ports[k].protocol) &&
                                    (streq(ports[i].host_ip, mine) || ip_is_any(mine) ||
                                     ip_is_any(ports[i].host_ip)))
                                        return json_set_error(ret_error, EADDRINUSE,
                                                              "host port %s:%" G_GUINT64_FORMAT
                                                              "/%s is already published by "
                                                              "container '%.128s'",
                                                              mine, req->ports[k].host_port,
                                                              req->ports[k].protocol,
                                                              strna(json_object_get_string_or_null(
                                                                      json_node_get_object(rec), "name")));
                        }
        }

        /* A program on the host listening there would be shadowed by the DNAT rule without a word: the
         * port must be free to bind, as it would be for docker's proxy. */
        for (size_t k = 0; k < req->n_ports; k++) {
                const char *ip = request_port_host_ip(&req->ports[k]);
                bool udp = streq(req->ports[k].protocol, "udp");
                union {
                        struct sockaddr sa;
                        struct sockaddr_in in;
                        struct sockaddr_in6 in6;
                } sa = {};
                socklen_t len;
                _cleanup_close_ int fd = -EBADF;
                int one = 1;

                if (inet_pton(AF_INET, ip, &sa.in.sin_addr) == 1) {
                        sa.in.sin_family = AF_INET;
                        sa.in.sin_port = htons((uint16_t) req->ports[k].host_port);
                        len = sizeof(sa.in);
                } else if (inet_pton(AF_INET6, ip, &sa.in6.sin6_addr) == 1) {
                        sa.in6.sin6_family = AF_INET6;
                        sa.in6.sin6_port = htons((uint16_t) req->ports[k].host_port);
                        len = sizeof(sa.in6);
                } else
                        return json_set_error(ret_error, EINVAL, "invalid host address '%.64s'", ip);
                fd = socket(sa.sa.sa_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        continue;
                (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (bind(fd, &sa.sa, len) < 0 && errno == EADDRINUSE)
                        return json_set_error(ret_error, EADDRINUSE,
                                              "host port %s:%" G_GUINT64_FORMAT "/%s is in use on the host",
                                              ip, req->ports[k].host_port, req->ports[k].protocol);
        }
        return 0;
}

/* ---- /etc/hosts of a network's containers ----------------------------------------------------------- */

typedef struct Member {
        char *id;
        JsonNode *rec;
        char *address; /* first address, no prefix */
        char *names;
} Member;

static void member_free(gpointer p) {
        Member *m = p;

        g_free(m->id);
        if (m->rec)
                json_node_unref(m->rec);
        g_free(m->address);
        g_free(m->names);
        g_free(m);
}

static GPtrArray *network_members(const char *containers_path, const char *network) {
        GPtrArray *l = g_ptr_array_new_with_free_func(member_free);
        _cleanup_closedir_ DIR *d = opendir(containers_path);
        struct dirent *de;

        while (d && (de = readdir(d))) {
                _cleanup_close_ int dir_fd = -EBADF;
                g_auto(GStrv) addrs = NULL;
                JsonNode *rec;
                JsonObject *o, *result;
                const char *name, *hostname;
                Member *m;

                if (!container_id_is_valid(de->d_name))
                        continue;
                dir_fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                rec = dir_fd >= 0 ? attachment_read(dir_fd) : NULL;
                if (!rec)
                        continue;
                o = json_node_get_object(rec);
                result = json_object_get_object_or_null(o, "result");
                if (!streq_ptr(json_object_get_string_or_null(o, "network"), network) || !result) {
                        json_node_unref(rec);
                        continue;
                }
                addrs = cni_result_addresses(json_object_get_member(o, "result"));
                name = json_object_get_string_or_null(o, "name");
                hostname = json_object_get_string_or_null(o, "hostname");
                if (!addrs[0] || !name || !hostname) {
                        json_node_unref(rec);
                        continue;
                }
                m = g_new0(Member, 1);
                m->id = g_strdup(de->d_name);
                m->rec = rec;
                m->address = g_strndup(addrs[0], strcspn(addrs[0], "/"));
                m->names = streq(name, hostname) ? g_strdup(name) : g_strdup_printf("%s %s", hostname, name);
                g_ptr_array_add(l, m);
        }
        return l;
}

/* Every container on the network sees every other by name (its hosts file), its own entry first. A
 * hosts file rather than a DNS server of our own: no daemon in the container's path, nothing listening,
 * and names resolve with any libc (and busybox) without a resolver configured; the price is a rewrite
 * of each member's file when a member comes or goes, done here under the network lock. */
static void hosts_rewrite(const char *containers_path, const char *network) {
        g_autoptr(GPtrArray) members = network_members(containers_path, network);
        _cleanup_close_ int containers_fd = open(containers_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        for (unsigned i = 0; i < members->len && containers_fd >= 0; i++) {
                Member *self = members->pdata[i];
                g_autoptr(GArray) entries = g_array_new(false, true, sizeof(EtcHost));
                JsonArray *extra =
                        json_object_get_array_or_null(json_node_get_object(self->rec), "add_hosts");
                g_autoptr(GPtrArray) owned = g_ptr_array_new_with_free_func(g_free);
                _cleanup_close_ int dir_fd = -EBADF;
                _cleanup_free_ char *text = NULL;
                EtcHost h;
                int r;

                h = (EtcHost){ self->address, self->names };
                g_array_append_val(entries, h);
                for (unsigned k = 0; k < members->len; k++)
                        if (k != i) {
                                Member *o = members->pdata[k];
                                h = (EtcHost){ o->address, o->names };
                                g_array_append_val(entries, h);
                        }
                for (guint k = 0; extra && k < json_array_get_length(extra); k++) {
                        JsonNode *en = json_array_get_element(extra, k);
                        const char *e =
                                JSON_NODE_HOLDS_VALUE(en) && json_node_get_value_type(en) == G_TYPE_STRING
                                        ? json_node_get_string(en)
                                        : NULL;
                        const char *colon = e ? strchr(e, ':') : NULL;
                        if (!colon)
                                continue;
                        h.names = g_strndup(e, (gsize) (colon - e));
                        h.address = g_strdup(colon + 1);
                        g_ptr_array_add(owned, h.names);
                        g_ptr_array_add(owned, h.address);
                        g_array_append_val(entries, h);
                }
                text = etc_hosts((EtcHost *) (void *) entries->data, entries->len);
                dir_fd = openat(containers_fd, self->id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                r = dir_fd < 0 ? -errno : etc_write_in_place(dir_fd, ETC_HOSTS, text);
                if (r < 0)
                        log_warning_errno(r, "Failed to rewrite /etc/hosts of container %s: %m", self->id);
        }
}

/* ---- attach / detach -------------------------------------------------------------------------------- */

static JsonNode *attachment_new(const NetAttachArgs *a, const CniNetwork *net, const char *netns) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        const ContainerRequest *req = a->request;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "network");
        json_builder_add_string_value(b, net->name);
        json_builder_set_member_name(b, "container_id");
        json_builder_add_string_value(b, a->id);
        json_builder_set_member_name(b, "netns");
        json_builder_add_string_value(b, netns);
        json_builder_set_member_name(b, "ifname");
        json_builder_add_string_value(b, CNI_IFNAME);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, req->name);
        json_builder_set_member_name(b, "hostname");
        json_builder_add_string_value(b, a->hostname);
        json_builder_set_member_name(b, "ports");
        json_builder_begin_array(b);
        for (size_t i = 0; i < req->n_ports; i++) {
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "host_ip");
                json_builder_add_string_value(b, request_port_host_ip(&req->ports[i]));
                json_builder_set_member_name(b, "host_port");
                json_builder_add_int_value(b, (gint64) req->ports[i].host_port);
                json_builder_set_member_name(b, "container_port");
                json_builder_add_int_value(b, (gint64) req->ports[i].container_port);
                json_builder_set_member_name(b, "protocol");
                json_builder_add_string_value(b, req->ports[i].protocol);
                json_builder_end_object(b);
        }
        json_builder_end_array(b);
        json_builder_set_member_name(b, "add_hosts");
        json_builder_begin_array(b);
        STRV_FOREACH(h, req->add_hosts)
        json_builder_add_string_value(b, *h);
        json_builder_end_array(b);
        json_builder_set_member_name(b, "conflist");
        json_builder_add_value(b, json_node_copy(net->root));
        json_builder_end_object(b);
        return json_builder_get_root(b);
}

static int del_recorded(JsonNode *rec, const char *id) {
        JsonObject *o = json_node_get_object(rec);
        JsonNode *conflist = json_object_get_member(o, "conflist");
        JsonNode *result = json_object_get_member(o, "result");
        _cleanup_(cni_network_freep) CniNetwork *net = NULL;
        _cleanup_free_ char *text = NULL, *msg = NULL;
        g_autofree RequestPort *ports = NULL;
        const char *netns = json_object_get_string_or_null(o, "netns");
        size_t n_ports = 0;
        struct stat st;
        int r;

        if (!conflist)
                return 0;
        text = json_to_string_compact(conflist);
        r = text ? cni_network_parse(text, strlen(text), &net, &msg) : -ENOMEM;
        if (r < 0) {
                log_warning("Container %s: the recorded network cannot be read back: %s", id, strna(msg));
                return r;
        }
        ports = attachment_ports(o, &n_ports);
        CniRuntime rt = {
                .container_id = id,
                /* Gone (a reboot): DEL without a namespace still releases the lease. */
                .netns = netns && stat(netns, &st) >= 0 ? netns : "",
                .ifname = CNI_IFNAME,
                .ports = ports,
                .n_ports = n_ports,
        };
        r = cni_del(net, &rt, result && JSON_NODE_HOLDS_OBJECT(result) ? result : NULL, &msg);
        if (r >= 0)
                log_info("Container %s: detached from network '%s'.", id, net->name);
        return r;
}

int net_attach(const NetAttachArgs *a, char **ret_netns, char **ret_error) {
        _cleanup_(cni_network_freep) CniNetwork *net = NULL;
        _cleanup_close_ int lock_fd = -EBADF;
        g_autoptr(JsonNode) rec = NULL, result = NULL;
        g_autofree char *netns_dir = g_build_filename(a->runtime_dir, "netns", NULL);
        g_autofree char *netns = g_build_filename(netns_dir, a->id, NULL);
        _cleanup_free_ char *resolv = NULL;
        int r;

        lock_fd = network_lock(a->runtime_dir);
        if (lock_fd < 0)
                return json_set_error(ret_error, -lock_fd, "cannot take the network lock: %s",
                                      strerror(-lock_fd));
        r = network_load(a->request->network, true, &net, ret_error);
        if (r < 0)
                return r;
        r = ports_check(a, ret_error);
        if (r < 0)
                return r;

        /* The record first: from here on, a crash at any point is undone by a DEL. */
        rec = attachment_new(a, net, netns);
        r = attachment_write(a->state_dir_fd, rec);
        if (r < 0)
                return json_set_error(ret_error, -r, "cannot record the network attachment: %s",
                                      strerror(-r));
        r = netns_create(netns_dir, netns);
        if (r < 0) {
                (void) unlinkat(a->state_dir_fd, NET_ATTACHMENT_FILE, 0);
                return json_set_error(ret_error, -r, "cannot create the network namespace: %s",
                                      strerror(-r));
        }
        CniRuntime rt = { .container_id = a->id,
                          .netns = netns,
                          .ifname = CNI_IFNAME,
                          .ports = a->request->ports,
                          .n_ports = a->request->n_ports };
        r = cni_add(net, &rt, &result, ret_error);
        if (r >= 0) {
                json_object_set_member(json_node_get_object(rec), "result", json_node_copy(result));
                r = attachment_write(a->state_dir_fd, rec);
                if (r < 0)
                        (void) json_set_error(ret_error, -r, "cannot record the network attachment: %s",
                                              strerror(-r));
        }
        if (r >= 0) {
                g_autofree char *hostname_line = g_strdup_printf("%s\n", a->hostname);
                resolv = etc_resolv_conf(a->request->dns);
                r = etc_write_in_place(a->state_dir_fd, ETC_RESOLV_CONF, resolv);
                if (r >= 0)
                        r = etc_write_in_place(a->state_dir_fd, ETC_HOSTNAME, hostname_line);
                if (r >= 0)
                        r = etc_write_in_place(a->state_dir_fd, ETC_HOSTS, "");
                if (r < 0)
                        (void) json_set_error(ret_error, -r, "cannot write the container's /etc files: %s",
                                              strerror(-r));
        }
        if (r < 0) {
                (void) del_recorded(rec, a->id);
                (void) netns_remove(netns);
                (void) unlinkat(a->state_dir_fd, NET_ATTACHMENT_FILE, 0);
                return r;
        }
        hosts_rewrite(a->containers_path, net->name);
        *ret_netns = g_steal_pointer(&netns);
        return 0;
}

int net_detach(const char *runtime_dir, const char *containers_path, int state_dir_fd, const char *id) {
        _cleanup_close_ int lock_fd = -EBADF;
        g_autoptr(JsonNode) rec = NULL;
        g_autofree char *network = NULL, *netns = NULL;
        int r;

        rec = attachment_read(state_dir_fd);
        if (!rec)
                return 0;
        lock_fd = network_lock(runtime_dir);
        if (lock_fd < 0)
                return lock_fd;
        r = del_recorded(rec, id);
        if (r < 0)
                /* The record stays: the supervisor's next start tries again. */
                return r;
        network = g_strdup(json_object_get_string_or_null(json_node_get_object(rec), "network"));
        netns = g_build_filename(runtime_dir, "netns", id, NULL);
        (void) netns_remove(netns);
        if (unlinkat(state_dir_fd, NET_ATTACHMENT_FILE, 0) < 0 && errno != ENOENT)
                return -errno;
        if (network)
                hosts_rewrite(containers_path, network);
        return 0;
}

/* host-local's lease files are named by address and hold "<container id>\r\n<ifname>". */
static char *lease_owner(int dir_fd, const char *name) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_free_ char *data = NULL;

        if (fd < 0 || read_regular_file_fd(fd, 4096, &data, NULL) < 0)
                return NULL;
        data[strcspn(data, "\r\n")] = 0;
        return container_id_is_valid(data) ? g_strdup(data) : NULL;
}

static bool container_exists(const char *containers_path, const char *id) {
        g_autofree char *p = g_build_filename(containers_path, id, NULL);
        return access(p, F_OK) >= 0;
}

int net_reconcile(const char *runtime_dir, const char *containers_path, bool leases) {
        g_autofree char *netns_dir = g_build_filename(runtime_dir, "netns", NULL);
        g_auto(GStrv) names = NULL;
        _cleanup_close_ int lock_fd = network_lock(runtime_dir);
        _cleanup_closedir_ DIR *nd = NULL;
        struct dirent *de;

        if (leases)
                (void) network_list(&names);
        for (char **n = names; n && *n; n++) {
                g_autofree char *dir = g_build_filename(CNI_LEASE_DIR, *n, NULL);
                _cleanup_closedir_ DIR *d = opendir(dir);
                _cleanup_(cni_network_freep) CniNetwork *net = NULL;
                _cleanup_free_ char *msg = NULL;

                while (d && (de = readdir(d))) {
                        g_autofree char *id = NULL, *netns = NULL;
                        struct stat st;

                        if (!ip_address_is_valid(de->d_name))
                                continue;
                        id = lease_owner(dirfd(d), de->d_name);
                        if (!id || container_exists(containers_path, id))
                                continue;
                        if (!net && network_load(*n, false, &net, &msg) < 0) {
                                log_warning("Cannot release stale leases of network '%s': %s", *n,
                                            strna(msg));
                                break;
                        }
                        netns = g_build_filename(netns_dir, id, NULL);
                        CniRuntime rt = { .container_id = id,
                                          .netns = stat(netns, &st) >= 0 ? netns : "",
                                          .ifname = CNI_IFNAME,
                                          .all_plugins = true };
                        log_info("Releasing the network attachment of vanished container %s (%s).", id, *n);
                        if (cni_del(net, &rt, NULL, NULL) >= 0)
                                (void) netns_remove(netns);
                }
        }
        nd = opendir(netns_dir);
        while (nd && (de = readdir(nd))) {
                g_autofree char *p = NULL;

                if (!container_id_is_valid(de->d_name) || container_exists(containers_path, de->d_name))
                        continue;
                p = g_build_filename(netns_dir, de->d_name, NULL);
                (void) netns_remove(p);
        }
        return 0;
}

/* {network, addresses, ports} of a record. */
static JsonNode *attachment_summary(JsonObject *o) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_auto(GStrv) addrs = cni_result_addresses(json_object_get_member(o, "result"));
        JsonArray *ports;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "network");
        json_builder_add_string_value(b, strna(json_object_get_string_or_null(o, "network")));
        json_builder_set_member_name(b, "addresses");
        json_builder_begin_array(b);
        STRV_FOREACH(s, addrs)
        json_builder_add_string_value(b, *s);
        json_builder_end_array(b);
        json_builder_set_member_name(b, "ports");
        ports = json_object_get_array_or_null(o, "ports");
        if (ports)
                json_builder_add_value(b, json_node_copy(json_object_get_member(o, "ports")));
        else {
                json_builder_begin_array(b);
                json_builder_end_array(b);
        }
        json_builder_end_object(b);
        return json_builder_get_root(b);
}

JsonNode *net_attachment_summary(int state_dir_fd) {
        g_autoptr(JsonNode) rec = attachment_read(state_dir_fd);

        return rec ? attachment_summary(json_node_get_object(rec)) : NULL;
}

int net_network_users(const char *containers_path, const char *network, JsonNode **ret) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        _cleanup_closedir_ DIR *d = opendir(containers_path);
        struct dirent *de;
        int n = 0;

        json_builder_begin_array(b);
        while (d && (de = readdir(d))) {
                _cleanup_close_ int dir_fd = -EBADF;
                g_autoptr(JsonNode) rec = NULL, summary = NULL;
                JsonObject *o;

                if (!container_id_is_valid(de->d_name))
                        continue;
                dir_fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                rec = dir_fd >= 0 ? attachment_read(dir_fd) : NULL;
                o = rec ? json_node_get_object(rec) : NULL;
                if (!o || !streq_ptr(json_object_get_string_or_null(o, "network"), network))
                        continue;
                n++;
                if (!ret)
                        continue;
                summary = attachment_summary(o);
                json_builder_begin_object(b);
                json_builder_set_member_name(b, "id");
                json_builder_add_string_value(b, de->d_name);
                json_builder_set_member_name(b, "name");
                json_builder_add_string_value(b, strna(json_object_get_string_or_null(o, "name")));
                json_builder_set_member_name(b, "addresses");
                json_builder_add_value(b, json_node_copy(json_object_get_member(
                                                  json_node_get_object(summary), "addresses")));
                json_builder_set_member_name(b, "ports");
                json_builder_add_value(
                        b, json_node_copy(json_object_get_member(json_node_get_object(summary), "ports")));
                json_builder_end_object(b);
        }
        json_builder_end_array(b);
        if (ret)
                *ret = json_builder_get_root(b);
        return n;
}
